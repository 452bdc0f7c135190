# atedash: multi-stage, non-root, gunicorn + whitenoise, configured by environment only.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.txt .
# The runtime part of the pinned requirements: tests and tooling stay out of the image.
RUN sed '/^# Tests/,$d' requirements.txt > runtime-requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r runtime-requirements.txt
COPY manage.py ./
COPY atedash ./atedash
COPY storage ./storage
COPY templates ./templates
COPY static ./static
# The repository's example configuration: settings refuse any secret written in it (atedash/settings.py).
COPY deploy ./deploy
COPY docs ./docs
COPY README.md Dockerfile ./
# collectstatic needs settings to import, not a store or a real secret (a throwaway one: settings refuse
# short keys and the placeholders written in this repository).
RUN ATEDASH_SECRET_KEY="$(/opt/venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    /opt/venv/bin/python manage.py collectstatic --noinput

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ATEDASH_STATIC_ROOT=/app/staticfiles PORT=8000
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin atedash
WORKDIR /app
# Code, virtualenv and static files belong to root and are read-only to the runtime user: a process
# that is taken over cannot rewrite the app. var/ (the operators file) is the one writable directory.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src /app
RUN chmod -R go-w /app /opt/venv \
 && install -d -o atedash -g atedash -m 0700 /app/var
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import os,urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT','8000'), timeout=2).status == 200 else 1)"
CMD ["sh", "-c", "exec gunicorn atedash.wsgi -c atedash/gunicorn.conf.py --bind 0.0.0.0:${PORT}"]
