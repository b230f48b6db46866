# The MLflow tracking server of compose/docker-compose.yml: MLflow plus the two drivers its stores
# need, which MLflow's own image does not ship (psycopg for PostgreSQL, boto3 for S3/MinIO).
FROM python:3.11-slim

ARG MLFLOW_VERSION=3.17.2
RUN pip install --no-cache-dir "mlflow==${MLFLOW_VERSION}" "psycopg[binary]>=3.1" "boto3>=1.28" \
    && useradd --create-home --uid 1000 mlflow

USER mlflow
WORKDIR /home/mlflow
EXPOSE 5000
