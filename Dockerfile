# casebot: the bot, installed from the hash-pinned lock file, running as uid 10001.
# It ships no config: mount yours at /config/casebot.toml (database.path under /data) and pass
# BOT_TOKEN in the environment; see "With Docker" in README.md for the docker run line.
FROM python:3.11.17-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CASEBOT_CONFIG=/config/casebot.toml

# tzdata for the time zones, fonts-khmeros for the Khmer in the report charts. Not pinned to a
# Debian version: bookworm's security updates replace them, and the base image pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata fonts-khmeros \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 casebot \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin casebot \
    && mkdir -p /data /config \
    && chown 10001:10001 /data

WORKDIR /app
# The dependencies first, in their own layer: a change to the code does not reinstall them.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir --no-deps .

USER 10001:10001
VOLUME ["/data"]
# Exit 0 while the database is intact and the outbox sender's heartbeat (beside the database) is
# fresh; one line saying what is wrong otherwise (docker inspect shows it).
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s --retries=3 CMD ["casebot", "health"]
CMD ["casebot", "run"]
