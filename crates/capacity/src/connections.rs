//! PostgreSQL connections: every client the chart configures against `max_connections`.

use super::report::{Check, Term, Unit};
use super::values::{Values, Worker};

/// Share of `max_connections`, in percent, the stack may plan to use; the rest absorbs
/// reconnect storms, idle server connections a pooler keeps, and a psql session or two.
pub const HEADROOM_PERCENT: u64 = 80;

/// Connections the chart's PgBouncer admits beyond Synapse's pools (`messenger.dbClients`
/// adds 10 for admin tasks; the template hard-codes it).
pub const POOLER_ADMIN_CONNECTIONS: u64 = 10;

/// The Synapse worker pools that run, with their replicas: those with replicas, federation-only
/// ones only with federation on (as `messenger.topology` decides).
pub(crate) fn synapse_pools(values: &Values) -> Vec<(&str, u64, &Worker)> {
    values
        .synapse
        .workers
        .iter()
        .map(|(name, worker)| {
            let replicas = if worker.federation_only && !values.federation.enabled {
                0
            } else {
                worker.replicas
            };
            (name.as_str(), replicas, worker)
        })
        .filter(|(_, replicas, _)| *replicas > 0)
        .collect()
}

/// Synapse reaches PostgreSQL only through the PgBouncer pooler in session mode, so each of
/// its connections holds one server connection: the pooler's server side is the sum of every
/// process's `cp_max` plus the pooler's admin connections. `sizing.postgresReserve` covers the
/// rest (superuser, CloudNativePG's instance manager and exporter, replication, backups).
pub(crate) fn check(values: &Values) -> Check {
    let mut terms = vec![Term {
        label: "synapse main".into(),
        count: 1,
        what: "cp_max",
        each: values.synapse.main.db.cp_max,
    }];
    for (name, replicas, worker) in synapse_pools(values) {
        terms.push(Term {
            label: format!("synapse {name}"),
            count: replicas,
            what: "cp_max",
            each: worker.db.cp_max,
        });
    }
    terms.push(Term {
        label: "pgbouncer admin clients (chart)".into(),
        count: 1,
        what: "",
        each: POOLER_ADMIN_CONNECTIONS,
    });
    let pool = terms.iter().map(Term::product).fold(0, u64::saturating_add);
    let instances = values.pooler.instances;
    let notes = vec![
        "PgBouncer runs in session mode: each client connection holds one PostgreSQL \
         connection, so the total reaches PostgreSQL as it is"
            .to_string(),
        format!(
            "each of the {instances} PgBouncer instances may open max_db_connections {pool}; \
             idle server connections left on one instance after clients move to another \
             (server_idle_timeout 600 s) could reach {instances} × {pool} = {} for a while",
            instances.saturating_mul(pool)
        ),
    ];
    let max = values.postgres.max_connections;
    let reserve = values.sizing.postgres_reserve;
    let planned = max.saturating_mul(HEADROOM_PERCENT) / 100;
    let limit = planned.saturating_sub(reserve);
    let arithmetic = format!(
        "max_connections {max} × {HEADROOM_PERCENT}% headroom = {planned} - {reserve} reserved \
         (sizing.postgresReserve)"
    );
    Check::new(
        "connections",
        Unit::Connections,
        terms,
        notes,
        arithmetic,
        limit,
    )
}
