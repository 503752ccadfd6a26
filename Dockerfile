# The portal's image: granian for the web, the same image runs the Celery worker and beat.
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
# granian (WSGI), one worker per core of a 2-core machine, 4 threads each so that a page
# waiting on Stripe holds a thread, not a worker; access log on stdout. bench/http_compare.py
# measured it at about half gunicorn gthread's CPU per request for a no-op view, a quarter less
# for check-access, and its access log at about 0.05 ms a request (gunicorn's: 0.1 ms).
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "2", "--blocking-threads", "4", "--access-log", "--respawn-failed-workers", \
     "billing_portal.wsgi:application"]
