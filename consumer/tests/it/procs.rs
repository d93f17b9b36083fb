//! Real processes for end-to-end and fault tests: the tansu broker and Flagstream's binaries.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::support::{self, unique};

const WITHIN: Duration = Duration::from_secs(90);

/// A child process that is killed if the test ends without stopping it.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn start(name: &'static str, command: &mut Command) -> Process {
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.log", unique(name)));
        let file = std::fs::File::create(&log).expect("create log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        eprintln!("{name} logs to {}", log.display());
        Process { name, child, log }
    }

    /// Resident memory now, in KiB (Linux), or None once the process is gone.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// True until the process exits.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the process has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit by itself.
    pub async fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "signal {}", self.name);
        let child = &mut self.child;
        support::eventually(WITHIN, "the process to exit", || {
            let exited = child.try_wait().expect("wait for child");
            async move { exited }
        })
        .await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

pub fn binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_flagstream-consumer")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test --workspace`",
        path.display()
    );
    path
}

pub async fn wait_for_port(port: u16) {
    support::eventually(
        WITHIN,
        &format!("a listener on port {port}"),
        || async move { TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()) },
    )
    .await;
}

pub async fn start_tansu(topic: &str, partitions: u32) -> (Process, String) {
    let tansu = std::env::var("TANSU")
        .expect("TANSU is not set: run the suite with scripts/test, which installs the broker");
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let broker = Process::start(
        "tansu",
        Command::new(&tansu).args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]),
    );
    wait_for_port(port).await;
    let created = Command::new(&tansu)
        .args([
            "topic",
            "create",
            "--broker",
            &url,
            "--partitions",
            &partitions.to_string(),
            topic,
        ])
        .output()
        .expect("run tansu topic create");
    assert!(
        created.status.success(),
        "create topic: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    (broker, format!("127.0.0.1:{port}"))
}

/// The password of the API's bootstrap admin, `admin`.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password-0123";

/// Starts the API binary with a bootstrap admin (see [`ADMIN_PASSWORD`]).
pub fn start_api(database_url: &str, port: u16, metrics_port: u16) -> Process {
    Process::start(
        "api",
        Command::new(binary("flagstream-api"))
            .env("DATABASE_URL", database_url)
            .env("API_LISTEN", format!("127.0.0.1:{port}"))
            .env("API_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env(
                "JWT_SECRET_KEY",
                "e2e-jwt-secret-0123456789abcdef0123456789",
            )
            .env("BOOTSTRAP_ADMIN_USERNAME", "admin")
            .env("BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("ENCRYPTION_KEY", support::TEST_KEY),
    )
}

/// Starts the consumer binary; `metrics_port` lets a test read its metrics.
pub fn start_consumer(
    database_url: &str,
    bootstrap: &str,
    topic: &str,
    group: &str,
    metrics_port: Option<u16>,
) -> Process {
    Process::start(
        "consumer",
        Command::new(binary("flagstream-consumer"))
            .env("DATABASE_URL", database_url)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("KAFKA_TOPIC", topic)
            .env("KAFKA_GROUP_ID", group)
            .env("BATCH_TIMEOUT_MS", "50")
            .env(
                "METRICS_ADDR",
                format!("127.0.0.1:{}", metrics_port.unwrap_or(0)),
            )
            .env("ENCRYPTION_KEY", support::TEST_KEY)
            // Tansu holds a JoinGroup for half the session timeout; keep start-up quick.
            .env(
                "KAFKA_OPTIONS",
                "session.timeout.ms=6000,heartbeat.interval.ms=500",
            )
            .env("LOG_FORMAT", "json"),
    )
}

impl Process {
    /// SIGKILL: no batch finished, no offset committed, no group left.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}
