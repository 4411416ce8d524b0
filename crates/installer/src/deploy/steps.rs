//! The deploy's steps, in order, and the components each wait step waits for.

/// Every step, in the order the deploy runs them, with what it does.
pub const STEPS: &[(&str, &str)] = &[
    (
        "preflight",
        "check the cluster: API, storage, nodes, labels, clocks, host names",
    ),
    (
        "load",
        "check the site registry holds every image of the bundle",
    ),
    (
        "namespaces",
        "create the namespaces with their Pod Security labels",
    ),
    (
        "secrets",
        "generate the stack's secrets once, inside the enclave",
    ),
    ("operators", "install the operators and their CRDs"),
    (
        "ca-issuer",
        "give cert-manager the site CA as a ClusterIssuer",
    ),
    ("stack", "install the messenger chart"),
    (
        "data",
        "wait for PostgreSQL, PgBouncer, Valkey and object storage",
    ),
    ("synapse", "wait for Synapse and HAProxy"),
    ("clients", "wait for Element, synapse-admin and the Gateway"),
    ("calls", "wait for TURN and the call services"),
    ("antivirus", "wait for the media scanner"),
    ("monitoring", "install logs and metrics collection"),
    ("li", "install the lawful-intercept instance"),
    ("smoke", "check the homeserver end to end"),
];

/// Steps that install the releases of `releases.toml` naming them.
pub const RELEASE_STEPS: &[&str] = &["operators", "stack", "monitoring", "li"];

/// Wait steps: the parts (`app.kubernetes.io/name` labels) of the stack's objects each waits
/// for; a part also covers `<part>-*` (`synapse` covers `synapse-main`) unless another step
/// names that label itself (`synapse-admin`).
pub const WAIT_STEPS: &[(&str, &[&str])] = &[
    (
        "data",
        &[
            "postgres",
            "pooler",
            "valkey",
            "valkey-proxy",
            "garage",
            "bucket-setup",
        ],
    ),
    ("synapse", &["synapse", "haproxy"]),
    ("clients", &["element", "synapse-admin", "gateway"]),
    ("calls", &["coturn", "livekit", "lk-jwt-service"]),
    ("antivirus", &["clamav", "content-scanner"]),
    // The lawful-intercept instance (li.enabled): its objects are in the stack's release, all
    // labelled li-* (li-postgres, li-synapse, li-element, li-synapse-admin, li-key-vault,
    // li-gateway's certificate); waited for here when no release of its own belongs to the step.
    ("li", &["li"]),
];

/// Kinds whose readiness the deploy waits on.
pub const WAITED_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "Cluster",
    "Certificate",
    "Gateway",
];

/// The wait step of an object labelled `app.kubernetes.io/name: label`, if any.
pub fn wait_step_of(label: &str) -> Option<&'static str> {
    let exact = WAIT_STEPS.iter().find(|(_, parts)| parts.contains(&label));
    let prefixed = || {
        WAIT_STEPS.iter().find(|(_, parts)| {
            parts.iter().any(|p| {
                label
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
        })
    };
    exact.or_else(prefixed).map(|(step, _)| *step)
}

/// Whether `name` is a step.
pub fn is_step(name: &str) -> bool {
    STEPS.iter().any(|(s, _)| *s == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_and_wait_steps_are_steps_in_order() {
        let position = |s: &str| STEPS.iter().position(|(n, _)| *n == s).unwrap();
        for s in RELEASE_STEPS {
            assert!(is_step(s), "{s}");
        }
        let waits: Vec<usize> = WAIT_STEPS.iter().map(|(s, _)| position(s)).collect();
        assert!(waits.windows(2).all(|w| w[0] < w[1]));
        assert!(position("stack") < waits[0]);
        assert!(position("secrets") < position("stack"));
        // Grafana (monitoring, an operators release) reads its admin login from them.
        assert!(position("secrets") < position("operators"));
        assert!(position("operators") < position("stack"));
        // A ClusterIssuer needs cert-manager's CRD.
        assert!(position("operators") < position("ca-issuer"));
    }

    #[test]
    fn labels_find_their_wait_step() {
        assert_eq!(wait_step_of("synapse-main"), Some("synapse"));
        assert_eq!(wait_step_of("synapse-admin"), Some("clients"));
        assert_eq!(wait_step_of("valkey-sentinel"), Some("data"));
        assert_eq!(wait_step_of("coturn"), Some("calls"));
        assert_eq!(wait_step_of("synapsex"), None);
        assert_eq!(wait_step_of("network"), None);
        assert_eq!(wait_step_of("li-synapse"), Some("li"));
        assert_eq!(wait_step_of("li-postgres"), Some("li"));
        assert_eq!(wait_step_of("livekit"), Some("calls"));
    }
}
