//! Integration tests of the registry client against real components: Debian's
//! `docker-registry`, images pushed by `skopeo`, and fault-injecting proxies.

mod client;
