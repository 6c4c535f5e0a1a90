import json
import subprocess
import sys

from clitools import run_cli


def test_models_json_lists_every_family(capsys):
    assert run_cli(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 + 7 + 7
    labels = [r["label"] for r in rows]
    assert labels[:8] == ["B0"] + [f"B-{i}" for i in range(1, 8)]
    assert labels[8:15] == [f"S-{i}" for i in range(7)]
    assert labels[15:] == [f"M-{i}" for i in range(7)]
    for family in ("efficientnet_b0", "mobilenetv3_small", "mobilenetv4_conv_small"):
        fam = [r for r in rows if r["family"] == family]
        params = [r["backbone_params"] for r in fam]
        assert params == sorted(params, reverse=True) and len(set(params)) == len(params)
        assert all(r["detector_params"] > r["backbone_params"] for r in fam)
        assert all(r["macs"] > 0 for r in fam)


def test_models_unknown_preset_is_a_clean_error():
    proc = subprocess.run(
        [sys.executable, "-m", "capstudy.cli.main", "models", "--preset", "huge"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "--preset 'huge' is unknown" in proc.stderr
    assert "Traceback" not in proc.stderr
