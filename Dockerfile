# syntax=docker/dockerfile:1
# Two stages: build a wheel-installed virtualenv, then copy only it into a slim runtime.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain/ domain/
COPY adapters/ adapters/
COPY entrypoints/ entrypoints/
COPY bootstrap/ bootstrap/
RUN pip install .

FROM python:3.11-slim AS runtime
# Inside a container the API listens on every interface: loopback there is the
# container's own, which `docker run -p 8080:8080` cannot reach. Serving off loopback
# needs TASKQ_API_KEYS (or TASKQ_API_KEY_FILE), or TASKQ_INSECURE=true / `serve
# --insecure` on a trusted network; without either the server refuses to start and
# says so. The SQLite backend (the default) keeps its file in the /data volume.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TASKQ_HOST=0.0.0.0 \
    PORT=8080 \
    TASKQ_SQLITE_PATH=/data/taskq.db \
    TASKQ_LOG_FORMAT=json
RUN useradd --create-home --uid 10001 taskq \
    && mkdir /data && chown taskq:taskq /data
COPY --from=build /opt/venv /opt/venv
USER taskq
WORKDIR /home/taskq
VOLUME ["/data"]
EXPOSE 8080
# `taskq api`, `taskq worker`, `taskq init`, ...: the command picks the role.
ENTRYPOINT ["taskq"]
CMD ["serve"]
