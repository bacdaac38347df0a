FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CASEBOT_CONFIG=/config/casebot.toml
RUN apt-get update && apt-get install -y --no-install-recommends tzdata fonts-khmeros \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 casebot \
    && mkdir -p /data /config && chown casebot /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir .
COPY config/casebot.example.toml /tmp/example.toml
RUN sed 's#^path = "data/casebot.sqlite3"#path = "/data/casebot.sqlite3"#' /tmp/example.toml \
    > /config/casebot.toml && casebot check-config --config /config/casebot.toml

USER casebot
VOLUME ["/data"]
# Mount your own config at /config/casebot.toml (keep database.path under /data)
# and pass BOT_TOKEN in the environment: docker run -e BOT_TOKEN -v casebot:/data IMAGE
CMD ["casebot", "run"]
