#!/usr/bin/env bash
# Refuses to let the stack start with the placeholders of .env.prod.example or with
# secrets the services would reject later, one by one and less legibly. Run by the
# one-shot `preflight` service (no network) before PostgreSQL initialises its volume,
# because the database passwords are fixed at that moment.
set -uo pipefail

errors=0
fail() { printf 'preflight: %s\n' "$*" >&2; errors=$((errors + 1)); }

check_secret() { # NAME MIN_LENGTH
  local name=$1 min=$2 value=${!1-}
  if [ -z "$value" ]; then
    fail "$name is empty"
  elif [[ ${value,,} == *change_me* ]]; then
    fail "$name still holds the placeholder from .env.prod.example; generate one (see the Docker Compose section of README.md)"
  elif [ "${#value}" -lt "$min" ]; then
    fail "$name is shorter than $min characters"
  fi
}

check_secret POSTGRES_PASSWORD 16
check_secret FLAGSTREAM_DB_PASSWORD 16
check_secret GRAFANA_DB_PASSWORD 16
check_secret GRAFANA_ADMIN_PASSWORD 16
check_secret JWT_SECRET_KEY 32
check_secret ENCRYPTION_KEYS 8

# Both database passwords end up in connection strings unencoded.
for name in FLAGSTREAM_DB_PASSWORD GRAFANA_DB_PASSWORD; do
  [[ ${!name-} =~ ^[A-Za-z0-9._~-]*$ ]] ||
    fail "$name may only use A-Z a-z 0-9 . _ ~ - (openssl rand -hex 32 does)"
done

# ENCRYPTION_KEYS: id:base64key,... with 32-byte keys and distinct ids.
declare -A seen=()
IFS=',' read -ra entries <<<"${ENCRYPTION_KEYS-}"
for entry in "${entries[@]}"; do
  id=${entry%%:*} key=${entry#*:}
  if [ "$id" = "$entry" ] || [ -z "$id" ]; then
    fail "ENCRYPTION_KEYS entry without an id (expected id:base64key)"
    continue
  fi
  [ -z "${seen[$id]-}" ] || fail "ENCRYPTION_KEYS repeats the id $id"
  seen[$id]=1
  bytes=$(printf '%s' "$key" | base64 -d 2>/dev/null | wc -c) || bytes=0
  [ "$bytes" -eq 32 ] || fail "ENCRYPTION_KEYS key $id is not 32 bytes of base64 (openssl rand -base64 32)"
done

if [ "$errors" -gt 0 ]; then
  printf 'preflight: %d problem(s) in the env file; nothing was started\n' "$errors" >&2
  exit 1
fi
echo "preflight: secrets look sane"
