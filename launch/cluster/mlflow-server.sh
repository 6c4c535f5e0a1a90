#!/usr/bin/env bash
# The tracking server of a cluster launch, with authentication (MLflow's basic-auth app).
#
#   export MLFLOW_TRACKING_USERNAME=capstudy MLFLOW_TRACKING_PASSWORD=...   # 12+ characters
#   launch/cluster/mlflow-server.sh STATE_DIR ARTIFACT_ROOT [PORT]
#
# STATE_DIR, on the server's local disk (SQLite over NFS can corrupt): mlflow.db (runs and
# the model registry), mlflow-auth.db (users and permissions) and mlflow-auth.ini (the auth
# app's settings, written here). ARTIFACT_ROOT: a folder every node mounts at the same path,
# or a bucket URI (s3://...). PORT: default 5000; MLFLOW_HOST: default 0.0.0.0 (all
# interfaces: the nodes connect to it).
#
# The first start creates the server's admin user from MLFLOW_TRACKING_USERNAME /
# MLFLOW_TRACKING_PASSWORD, the variables the MLflow client reads: export the same two where
# the launch runs and where each node's `ray start` runs, and capstudy logs in as that user.
# Later starts keep the stored users. Every request without a valid login is refused (401);
# other users that an admin adds may read (default_permission = READ), not write.
# The credentials are read from the environment only: never on a command line (`ps` shows
# those), never in a file this writes, never printed.
#
# Artifacts are written by the clients straight into ARTIFACT_ROOT, outside the server's
# login: guard it with file permissions (or the bucket's policy). The registered pretrained
# weights carry their sha256, which every trial checks before it loads them.
set -euo pipefail

: "${MLFLOW_TRACKING_USERNAME:?set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (the admin user of the server) in the environment}"
: "${MLFLOW_TRACKING_PASSWORD:?set MLFLOW_TRACKING_PASSWORD (12 or more characters) in the environment}"
STATE=${1:?usage: mlflow-server.sh STATE_DIR ARTIFACT_ROOT [PORT]}
ARTIFACTS=${2:?usage: mlflow-server.sh STATE_DIR ARTIFACT_ROOT [PORT]}
PORT=${3:-5000}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
chmod 700 "$STATE"   # the stores hold the password hashes and every run

export MLFLOW_AUTH_CONFIG_PATH=$STATE/mlflow-auth.ini
cat > "$MLFLOW_AUTH_CONFIG_PATH" <<EOF
[mlflow]
default_permission = READ
database_uri = sqlite:///$STATE/mlflow-auth.db
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
export MLFLOW_AUTH_ADMIN_USERNAME=$MLFLOW_TRACKING_USERNAME
export MLFLOW_AUTH_ADMIN_PASSWORD=$MLFLOW_TRACKING_PASSWORD
# The auth app's CSRF key: one per server start (a restart only ends open UI sessions).
MLFLOW_FLASK_SERVER_SECRET_KEY=${MLFLOW_FLASK_SERVER_SECRET_KEY:-$(python -c 'import secrets; print(secrets.token_hex(32))')}
export MLFLOW_FLASK_SERVER_SECRET_KEY
# Job execution off and one worker: the server starts in seconds.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
exec mlflow server --app-name basic-auth --host "${MLFLOW_HOST:-0.0.0.0}" --port "$PORT" \
  --workers 1 --backend-store-uri "sqlite:///$STATE/mlflow.db" \
  --default-artifact-root "$ARTIFACTS"
