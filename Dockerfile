# Attest: one image for web, workers and beat (the command differs per service in docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=portal.settings ATTEST_DATA_DIR=/var/lib/attest STATIC_ROOT=/app/staticfiles

# Pango and fonts for WeasyPrint reports; libpq for psycopg2.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app --uid 1000 attest

WORKDIR /app
COPY requirements.txt constraints.txt ./
# torch first and pinned: the GPU worker image may swap in a CUDA build of the same version.
RUN pip install --no-cache-dir torch==2.13.0 \
 && pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
RUN SECRET_KEY=build-only ATTEST_MASTER_KEY=$(python -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())') \
    python manage.py collectstatic --noinput \
 && mkdir -p /var/lib/attest && chown -R attest /var/lib/attest
USER attest
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
