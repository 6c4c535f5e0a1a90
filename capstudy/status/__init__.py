"""Where a study stands: read its launches and trials back from MLflow and Ray (view), and
the plain-text tables ``capstudy ls``/``status`` and the end of a launch print (text)."""
