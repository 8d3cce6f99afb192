//! Real `nats-server` processes for the NATS engine's tests: one server, or a cluster on
//! loopback ports, each with JetStream on and its data in a temporary directory. Nothing is
//! mocked: the tests talk to the server Debian ships (`.ci/run` installs it).
//!
//! Each server runs under a small shell that holds the server's pid and kills it when the
//! test process goes away (its standard input closes), so a test that panics or is killed
//! leaves no server behind.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The `nats-server` binary on `PATH`, or `None` (a skip, except when `STRATA_REQUIRE_NATS` is
/// set, as `.ci/run` does: then the missing server fails the test).
///
/// # Panics
/// When the server is missing and `STRATA_REQUIRE_NATS` is set.
#[must_use]
pub fn server_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("STRATA_REQUIRE_NATS").is_none(),
            "nats-server not found on PATH, and STRATA_REQUIRE_NATS is set: apt-get install nats-server"
        );
        eprintln!("nats-server not found on PATH; skipping (apt-get install nats-server)");
    }
    found
}

/// A free loopback port below the kernel's ephemeral range (32768 and up on Linux), so that
/// while a killed server is down no outgoing connection can be given its port and keep it
/// from starting again; each call of a process gets another one.
fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = u64::from(std::process::id()) * 7_919;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(20_000 + (start + n) % 12_000).expect("below 32,000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One `nats-server` with JetStream.
pub struct NatsServer {
    binary: PathBuf,
    /// Client port.
    pub port: u16,
    /// Monitoring (HTTP) port.
    monitor: u16,
    /// Cluster (route) port, when in a cluster.
    cluster_port: Option<u16>,
    /// Every route of the cluster, when in one.
    routes: Vec<u16>,
    name: String,
    dir: PathBuf,
    shell: Option<Child>,
    pid: u32,
}

impl NatsServer {
    /// Starts a lone server; `None` when `nats-server` is not installed (see
    /// [`server_binary`]).
    ///
    /// # Panics
    /// When the server does not start.
    #[must_use]
    pub fn start(dir: &Path) -> Option<Self> {
        let binary = server_binary()?;
        let mut s = Self {
            binary,
            port: free_port(),
            monitor: free_port(),
            cluster_port: None,
            routes: Vec::new(),
            name: "n0".into(),
            dir: dir.join("n0"),
            shell: None,
            pid: 0,
        };
        s.launch();
        Some(s)
    }

    /// The client address of this server, `nats://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn launch(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("create the server's directory");
        let mut args = vec![
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            self.port.to_string(),
            "-js".to_owned(),
            "-sd".to_owned(),
            self.dir.display().to_string(),
            "-n".to_owned(),
            self.name.clone(),
            "-m".to_owned(),
            self.monitor.to_string(),
        ];
        if let Some(cp) = self.cluster_port {
            let routes: Vec<String> = self
                .routes
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            args.extend([
                "--cluster_name".to_owned(),
                "strata-test".to_owned(),
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{cp}"),
                "--routes".to_owned(),
                routes.join(","),
            ]);
        }
        let log = std::fs::File::create(self.dir.join("server.log")).expect("create the log");
        // The shell prints the server's pid, then waits for its input to close (this test
        // process ending, or `stop`) and kills the server.
        let script = r#""$0" "$@" & p=$!; echo $p; read _; kill $p 2>/dev/null; wait $p"#;
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&self.binary)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        let mut line = String::new();
        BufReader::new(shell.stdout.take().expect("the shell's output"))
            .read_line(&mut line)
            .expect("read the server's pid");
        self.pid = line.trim().parse().expect("the server's pid");
        self.shell = Some(shell);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nats-server did not listen on {} (log: {})",
                self.port,
                self.dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last sequence of stream `stream` as this server holds it (its replica), from the
    /// server's monitoring endpoint; `None` when the server does not answer or has no such
    /// stream.
    #[must_use]
    pub fn stream_last_seq(&self, stream: &str) -> Option<u64> {
        use std::io::Read;
        let mut conn = TcpStream::connect(("127.0.0.1", self.monitor)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        conn.write_all(
            b"GET /jsz?streams=true HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .ok()?;
        let mut text = String::new();
        conn.read_to_string(&mut text).ok()?;
        let body = text.split_once("\r\n\r\n")?.1;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        json["account_details"]
            .as_array()?
            .iter()
            .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
            .find(|s| s["name"] == stream)
            .and_then(|s| s["state"]["last_seq"].as_u64())
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
        self.reap();
    }

    /// Starts the server again on the same ports and data.
    pub fn restart(&mut self) {
        self.reap();
        self.launch();
    }

    fn reap(&mut self) {
        if let Some(mut shell) = self.shell.take() {
            if let Some(mut input) = shell.stdin.take() {
                let _ = input.write_all(b"\n");
            }
            let _ = shell.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.reap();
    }
}

/// Servers of one JetStream cluster on loopback.
pub struct NatsCluster {
    /// The servers, in order.
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` servers routed to each other; `None` without `nats-server`.
    ///
    /// # Panics
    /// When a server does not start.
    #[must_use]
    pub fn start(dir: &Path, n: usize) -> Option<Self> {
        let binary = server_binary()?;
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes: Vec<NatsServer> = (0..n)
            .map(|i| NatsServer {
                binary: binary.clone(),
                port: free_port(),
                monitor: free_port(),
                cluster_port: Some(routes[i]),
                routes: routes.clone(),
                name: format!("n{i}"),
                dir: dir.join(format!("n{i}")),
                shell: None,
                pid: 0,
            })
            .collect();
        for node in &mut nodes {
            node.launch();
        }
        Some(Self { nodes })
    }

    /// Every server's client address, comma-separated after one `nats://`.
    #[must_use]
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("nats://{}", hosts.join(","))
    }
}

/// A store name no other test of this run uses.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
