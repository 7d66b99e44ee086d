#!/bin/sh
# Entrypoint of the compose `elasticsearch` service. ELASTIC_PASSWORD reaches the built-in `elastic` user
# only on the very first start (it is then stored in the cluster), so a changed password would lock the
# health check and `elasticsearch-setup` out. Instead they sign in as `maam_admin`, a file-realm superuser
# written here from ELASTIC_PASSWORD at every start: changing the password in .env and running
# `docker compose up -d` applies it. POSIX sh; the tools are the image's own.
set -eu
users=/usr/share/elasticsearch/bin/elasticsearch-users
"$users" userdel maam_admin >/dev/null 2>&1 || true
"$users" useradd maam_admin -p "${ELASTIC_PASSWORD:?}" -r superuser
exec /usr/local/bin/docker-entrypoint.sh eswrapper
