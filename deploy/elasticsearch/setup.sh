#!/bin/sh
# Creates the role and user MAAM's services use in Elasticsearch (compose service
# `elasticsearch-setup`). Idempotent: PUT creates or updates, so a changed MAAM_ELASTIC_PASSWORD is applied
# by the next `docker compose up -d` (the job's environment changed, so it runs again). Signs in as the
# file-realm `maam_admin` (deploy/elasticsearch/entrypoint.sh). POSIX sh + curl (in the ES image).
set -eu
: "${ES_URL:=http://elasticsearch:9200}"
: "${MAAM_ES_INDEX_PATTERN:=maam-*}"

es() {
    # $1 method, $2 path, $3 JSON body
    curl -fsS -u "maam_admin:${ELASTIC_PASSWORD}" -X "$1" "${ES_URL}$2" \
        -H 'Content-Type: application/json' -d "$3"
    echo
}

echo "waiting for ${ES_URL}"
until curl -fsS -o /dev/null -u "maam_admin:${ELASTIC_PASSWORD}" "${ES_URL}/_cluster/health?wait_for_status=yellow&timeout=5s"; do
    sleep 2
done

es PUT /_security/role/maam_writer "{
  \"cluster\": [\"monitor\", \"manage_index_templates\"],
  \"indices\": [{\"names\": [\"${MAAM_ES_INDEX_PATTERN}\"],
                 \"privileges\": [\"create_index\", \"delete_index\", \"manage\", \"read\", \"write\", \"view_index_metadata\"]}]
}"
es PUT /_security/user/maam "{\"password\": \"${MAAM_ELASTIC_PASSWORD}\", \"roles\": [\"maam_writer\"], \"full_name\": \"MAAM services\"}"
echo "user maam ready (indices ${MAAM_ES_INDEX_PATTERN})"
