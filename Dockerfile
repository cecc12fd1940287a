FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md beat_schedule.py flower.cfg ./
COPY automation ./automation
COPY tasks ./tasks
RUN pip install --no-cache-dir . && useradd --create-home automation
USER automation
