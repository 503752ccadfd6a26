# The portal's image: gunicorn for the web, the same image runs the Celery worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    DJANGO_SETTINGS_MODULE=billing_portal.settings.production

WORKDIR /app
RUN useradd --create-home --uid 1000 portal && mkdir /data && chown portal /data

COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY --chown=portal . .
# Static files are collected at build time; whitenoise serves them with far-future caching.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput

USER portal
EXPOSE 8000
CMD ["gunicorn", "billing_portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", \
     "--threads", "4", "--access-logfile", "-"]
