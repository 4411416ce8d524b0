//! The chart's antivirus on loopback: Debian's clamd started with the chart's rendered
//! clamd.conf and a database `sigtool` builds for the test, and the PyPI
//! matrix-content-scanner started with the chart's rendered configuration and scan script.

use super::chart::Rendered;
use super::overlay::Endpoints;
use serde_norway::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use test_support::net::{http_get, wait_for};
use test_support::ports::reserved_port;
use test_support::process::Service;

/// Debian's clamd (package clamav-daemon).
pub const CLAMD: &str = "/usr/sbin/clamd";
/// The content a test signature of the default database matches.
pub const MARKER: &[u8] = b"MESSENGER-ANTIVIRUS-TEST-MARKER-ONE";
/// The name clamd reports for it (`.UNOFFICIAL`: a database without a digital signature).
pub const MARKER_SIGNATURE: &str = "Messenger.Test.MarkerOne.UNOFFICIAL";

/// Fails the test with an install hint unless clamd and sigtool are installed.
pub fn require() {
    test_support::require(CLAMD, "clamav-daemon");
    test_support::require("sigtool", "clamav");
}

/// A `.ndb` line matching `content` anywhere in any file, its hex made by `sigtool --hex-dump`.
pub fn signature(name: &str, content: &[u8]) -> String {
    let mut child = Command::new("sigtool")
        .arg("--hex-dump")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(content).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "sigtool --hex-dump failed");
    let hex = String::from_utf8(out.stdout).unwrap();
    format!("{name}:0:*:{}", hex.trim())
}

/// A running clamd; stopped on drop.
pub struct Clamd {
    pub port: u16,
    conf: PathBuf,
    db: PathBuf,
    log: PathBuf,
    pub service: Option<Service>,
}

impl Clamd {
    /// Starts clamd from the chart's `clamd.conf` with only the listening address, database,
    /// pid and temporary paths made local, its database holding `signatures` (`.ndb` lines).
    pub fn start(dir: &Path, chart_conf: &str, signatures: &[String]) -> Clamd {
        require();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = reserved_port();
        let local = |directive: &str| -> Option<String> {
            Some(match directive {
                "TCPSocket" => port.to_string(),
                "TCPAddr" => "127.0.0.1".into(),
                "DatabaseDirectory" => dir.join("db").display().to_string(),
                "PidFile" => dir.join("clamd.pid").display().to_string(),
                "TemporaryDirectory" => dir.join("tmp").display().to_string(),
                _ => return None,
            })
        };
        let conf: String = chart_conf
            .lines()
            .map(|line| {
                let directive = line.split_whitespace().next().unwrap_or("");
                match local(directive) {
                    Some(value) => format!("{directive} {value}\n"),
                    None => format!("{line}\n"),
                }
            })
            .collect();
        assert!(conf.contains("TCPSocket"), "clamd.conf has no TCPSocket");
        let path = dir.join("clamd.conf");
        std::fs::write(&path, conf).unwrap();
        let mut clamd = Clamd {
            port,
            conf: path,
            db: dir.join("db"),
            log: dir.join("clamd.log"),
            service: None,
        };
        clamd.load(signatures);
        clamd
    }

    /// Stops clamd, replaces its database with `signatures` and starts it again on the same
    /// port: what rolling the clamd pods to a new signature image does.
    pub fn load(&mut self, signatures: &[String]) {
        self.stop();
        std::fs::write(self.db.join("test.ndb"), signatures.join("\n") + "\n").unwrap();
        let mut command = Command::new(CLAMD);
        command.arg("-c").arg(&self.conf);
        let mut service = Service::spawn("clamd", command, &self.log);
        let port = self.port;
        wait_for("clamd", Duration::from_secs(60), || {
            service.assert_running();
            command_reply(port, "PING").as_deref() == Some("PONG")
        });
        self.service = Some(service);
    }

    /// Stops clamd (clients then get no verdict).
    pub fn stop(&mut self) {
        if let Some(mut service) = self.service.take() {
            service.signal_and_wait("TERM", Duration::from_secs(20));
        }
    }

    /// clamd's resident memory in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.service.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// A one-word clamd command's reply (`PING` → `PONG`), or `None` without an answer.
pub fn command_reply(port: u16, word: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(format!("z{word}\0").as_bytes()).ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok()?;
    Some(
        String::from_utf8_lossy(&reply)
            .trim_end_matches('\0')
            .trim()
            .to_string(),
    )
}

/// The rendered matrix-content-scanner, running.
pub struct ContentScanner {
    pub service: Service,
}

/// The chart's antivirus pieces for the rehearsal stack.
pub struct Antivirus {
    pub clamd: Clamd,
    /// Where the chart's `<release>-antivirus` ConfigMap was written (Synapse's PYTHONPATH).
    pub module_dir: PathBuf,
    /// The cluster address the chart gives clamd (its Service, port 3310).
    pub clamd_host: String,
    /// The content scanner's cluster address (its Service, port 8080).
    pub scanner_host: String,
}

impl Antivirus {
    /// clamd and the module files, when the rendered chart has antivirus on; clamd's address
    /// is added to `endpoints`.
    pub fn prepare(
        rendered: &Rendered,
        release: &str,
        namespace: &str,
        dir: &Path,
        endpoints: &mut Endpoints,
    ) -> Option<Antivirus> {
        let conf = rendered.config_map(&format!("{release}-clamd"), "clamd.conf")?;
        let module_dir = dir.join("antivirus");
        std::fs::create_dir_all(&module_dir).unwrap();
        let cm = format!("{release}-antivirus");
        for key in rendered.config_map_keys(&cm) {
            let path = module_dir.join(&key);
            std::fs::write(&path, rendered.config_map(&cm, &key).unwrap()).unwrap();
            // The scanner's volume mounts it 0555 (an executable script).
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            std::fs::set_permissions(&path, mode).unwrap();
        }
        let clamd = Clamd::start(
            &dir.join("clamd"),
            &conf,
            &[signature("Messenger.Test.MarkerOne", MARKER)],
        );
        let clamd_host = format!("{release}-clamd.{namespace}.svc.cluster.local");
        endpoints.insert(&clamd_host, 3310, clamd.port);
        Some(Antivirus {
            clamd,
            module_dir,
            clamd_host,
            scanner_host: format!("{release}-content-scanner.{namespace}.svc.cluster.local"),
        })
    }

    /// Starts the content scanner from the rendered ConfigMap and Deployment (its command,
    /// environment and mounts), with every cluster address in `endpoints` made local; its own
    /// address is added to `endpoints` for HAProxy.
    pub fn start_scanner(
        &self,
        rendered: &Rendered,
        release: &str,
        dir: &Path,
        endpoints: &mut Endpoints,
    ) -> ContentScanner {
        test_support::require_python(
            "matrix_content_scanner",
            "install it with `pip install matrix-content-scanner==1.4.0`",
        );
        let name = format!("{release}-content-scanner");
        let dir = dir.join("content-scanner");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = reserved_port();
        endpoints.insert(&self.scanner_host, 8080, port);
        let text = rendered.config_map(&name, "config.yaml").unwrap();
        let mut config: Value = serde_norway::from_str(&endpoints.rewrite_text(&text)).unwrap();
        config["web"]["host"] = "127.0.0.1".into();
        config["web"]["port"] = u64::from(port).into();
        let script = config["scan"]["script"].as_str().unwrap().to_string();
        let file = script.strip_prefix("/antivirus/").unwrap();
        config["scan"]["script"] = self.module_dir.join(file).display().to_string().into();
        config["scan"]["temp_directory"] = dir.join("tmp").display().to_string().into();
        // The init container's key, made the same way.
        let secret = dir.join("request-secret");
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .unwrap();
        use base64::Engine as _;
        std::fs::write(
            &secret,
            base64::engine::general_purpose::STANDARD.encode(key),
        )
        .unwrap();
        config["crypto"]["request_secret_path"] = secret.display().to_string().into();
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, serde_norway::to_string(&config).unwrap()).unwrap();

        let deployment = rendered.object_of("Deployment", &name);
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let words: Vec<&str> = container["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(words[0], "python", "the scanner's command: {words:?}");
        let mut command = Command::new("python3");
        for word in &words[1..] {
            command.arg(if word.starts_with("/config/") {
                config_path.display().to_string()
            } else {
                word.to_string()
            });
        }
        for env in container["env"].as_sequence().into_iter().flatten() {
            let (Some(key), Some(value)) = (env["name"].as_str(), env["value"].as_str()) else {
                continue;
            };
            let value = match key {
                "CLAMD_HOST" => "127.0.0.1".to_string(),
                "CLAMD_PORT" => self.clamd.port.to_string(),
                "HOME" => dir.display().to_string(),
                _ => value.to_string(),
            };
            command.env(key, value);
        }
        command.current_dir(&dir);
        let mut service = Service::spawn("content-scanner", command, &dir.join("scanner.log"));
        wait_for("content-scanner", Duration::from_secs(60), || {
            service.assert_running();
            matches!(
                http_get(port, "/_matrix/media_proxy/unstable/public_key"),
                Some((200, _))
            )
        });
        ContentScanner { service }
    }
}
