//! A throwaway CA and a server certificate for `localhost` and 127.0.0.1, made with `openssl`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of a test PKI.
pub struct Pki {
    /// The CA certificate clients trust (PEM).
    pub ca: PathBuf,
    /// The server certificate followed by its key, as HAProxy's `crt` wants it.
    pub server_bundle: PathBuf,
}

/// Makes a CA and a server certificate signed by it in `dir`.
pub fn pki(dir: &Path) -> Pki {
    test_support::require("openssl", "install it with `apt-get install -y openssl`");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca = [
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    ];
    run(&[&["req", "-x509"][..], &key, &ca].concat());
    let csr = [
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ];
    run(&[&["req"][..], &key, &csr].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    let bundle = [
        std::fs::read(dir.join("server.pem")).unwrap(),
        std::fs::read(dir.join("server.key")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join("server-bundle.pem"), bundle).unwrap();
    Pki {
        ca: dir.join("ca.pem"),
        server_bundle: dir.join("server-bundle.pem"),
    }
}
