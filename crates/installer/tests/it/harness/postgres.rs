//! A throwaway PostgreSQL 15 server with a C-collated UTF-8 database for Synapse.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use test_support::net::wait_for;
use test_support::ports::reserved_port;
use test_support::process::{running_as_root, Service};

/// Where Debian puts the server binaries.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL; trusts every local connection. Stopped when dropped.
pub struct Postgres {
    pub port: u16,
    _service: Service,
}

/// Starts PostgreSQL in `dir` with superuser `user` and creates `database` the way Synapse
/// requires (UTF8, C collation, from template0).
pub fn start(dir: &Path, user: &str, database: &str) -> Postgres {
    start_with(dir, user, database, &[])
}

/// [`start`] with extra server `parameters` (name, value), such as a CloudNativePG
/// Cluster's `postgresql.parameters`.
pub fn start_with(
    dir: &Path,
    user: &str,
    database: &str,
    parameters: &[(String, String)],
) -> Postgres {
    test_support::require(
        &format!("{BIN}/postgres"),
        "install PostgreSQL 15 with `apt-get install -y postgresql`",
    );
    test_support::require("psql", "install `postgresql-client`");
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("data");
    if running_as_root() {
        // PostgreSQL refuses to run as root: hand the directory to the `postgres` user, who
        // must also be able to reach it.
        for ancestor in dir.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(ancestor) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let reachable = std::fs::Permissions::from_mode(mode | 0o011);
                std::fs::set_permissions(ancestor, reachable).unwrap();
            }
        }
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot chown {} to postgres", dir.display());
    }
    let log = dir.join("postgres.log");
    let initdb = as_postgres(&format!("{BIN}/initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", user, "--auth=trust", "--encoding=UTF8", "--locale=C"])
        .output()
        .unwrap();
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    let port = reserved_port();
    let mut server = as_postgres(&format!("{BIN}/postgres"));
    server
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=400",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            // CloudNativePG's default (pkg/postgres/configuration.go): logical replication
            // (the LI data path) needs it.
            "-c",
            "wal_level=logical",
        ]);
    for (name, value) in parameters {
        server.arg("-c").arg(format!("{name}={value}"));
    }
    let mut service = Service::spawn("postgres", server, &log).with_stop_signal("INT");
    let create = format!(
        "CREATE DATABASE {database} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' \
         TEMPLATE template0"
    );
    wait_for("postgres", Duration::from_secs(30), || {
        service.assert_running();
        psql(port, user, "postgres", std::slice::from_ref(&create))
            .status
            .success()
    });
    Postgres {
        port,
        _service: service,
    }
}

/// `psql` as `user` on `database`, every statement in one session, stopping at the first
/// error; unaligned, tuples only, quiet (no command tags).
pub fn psql(port: u16, user: &str, database: &str, statements: &[String]) -> std::process::Output {
    let mut command = Command::new("psql");
    command
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            database,
        ])
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]);
    for statement in statements {
        command.arg("-c").arg(statement);
    }
    command.output().unwrap()
}

/// `program`, run as the `postgres` user when the test runs as root.
fn as_postgres(program: &str) -> Command {
    if running_as_root() {
        let mut command = Command::new("setpriv");
        command.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
            program,
        ]);
        command
    } else {
        Command::new(program)
    }
}
