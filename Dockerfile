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
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 taskq
COPY --from=build /opt/venv /opt/venv
USER taskq
WORKDIR /home/taskq
EXPOSE 8080
# `taskq api`, `taskq worker`, `taskq init`, ...: the command picks the role.
ENTRYPOINT ["taskq"]
CMD ["serve"]
