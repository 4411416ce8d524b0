//! Fixed test vectors made once with the Debian `minisign` 0.11 tool, so that
//! unit tests check compatibility without needing the tool at test time.
//!
//! Made with (in an empty directory):
//!
//! ```text
//! minisign -G -W -p kat.pub -s kat.key
//! printf 'minisign known-answer test message\n' > msg.txt
//! minisign -S -s kat.key -m msg.txt -x prehashed.minisig \
//!     -c "signature from the minisign tool" -t "$(printf 'timestamp:1700000000\tfile:msg.txt\thashed')"
//! minisign -S -l -s kat.key -m msg.txt -x legacy.minisig \
//!     -c "legacy signature" -t "legacy trusted comment"
//! printf 'correct horse\ncorrect horse\n' | minisign -G -p enc.pub -s enc.key
//! printf 'correct horse\n' | minisign -S -s enc.key -m msg.txt -x enc.minisig
//! ```
//!
//! (minisign reads passwords from standard input when it is not a terminal.)

/// The signed message (`msg.txt`).
pub(crate) const MESSAGE: &[u8] = b"minisign known-answer test message\n";

/// Public key of an unencrypted key pair made by `minisign -G -W`.
pub(crate) const KAT_PUB: &str = concat!(
    "untrusted comment: minisign public key 166423B25F8E0D9C\n",
    "RWScDY5fsiNkFhNt2uY8UUTZFggOYdoVNb4jkexO24IEJ8kyw5QM5xoV\n",
);

/// Its unencrypted secret key (KDF tag two NULs, all-zero checksum).
pub(crate) const KAT_KEY: &str = concat!(
    "untrusted comment: minisign encrypted secret key\n",
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAnA2OX7IjZBbU6W4O0jTIiHZ9drxc2bZlFLG0eSv69rk6MIg69Yfa6RNt2uY8UUTZFggOYdoVNb4jkexO24IEJ8kyw5QM5xoVAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
);

/// Prehashed (`ED`) signature of [`MESSAGE`] by that key, made by `minisign -S`.
pub(crate) const KAT_PREHASHED_MINISIG: &str = concat!(
    "untrusted comment: signature from the minisign tool\n",
    "RUScDY5fsiNkFl7dEtukkPJU6Wrjnld99nP+TJxYZJW5yUViOVI5IsIfQGALDDuGmMHHhA1rVd0nnHCO/0MxXvFtVmPoJQ7puQo=\n",
    "trusted comment: timestamp:1700000000\tfile:msg.txt\thashed\n",
    "uNwWMOQgNbWvF33s6PNJ6VkvCPU0aNhxE6S28pBQfIsh7oKKVCWTNluPWnVtMFYLh0Q9kKrA8gONodkEbSIgDw==\n",
);

/// Legacy (`Ed`) signature of [`MESSAGE`] by that key, made by `minisign -S -l`.
pub(crate) const KAT_LEGACY_MINISIG: &str = concat!(
    "untrusted comment: legacy signature\n",
    "RWScDY5fsiNkFun1a7AgdZAcqI8PsSFqiv14GbfS9yXd505eRw9mWpD2qZM880w/fJ5PEB973CvogHwmYEpT4gFhwIEacNx+RwM=\n",
    "trusted comment: legacy trusted comment\n",
    "X9kwVHDVQhyTqWKRjFTxfDMzkOl+Fa+89as0fnqQ71ka3O6C+DeBwUF0LYtU+YaGNSkmhyktcmlsC6rnFdGIBQ==\n",
);

/// Public key of an encrypted key pair made by `minisign -G`.
pub(crate) const ENC_PUB: &str = concat!(
    "untrusted comment: minisign public key E8E610435D3E4EA0\n",
    "RWSgTj5dQxDm6ISct9PU0N7e0m5z31w2y5Rm3JLC1+bPZL/ZdlrvxKUV\n",
);

/// Its secret key, encrypted by minisign (scrypt, opslimit 2^25, memlimit 2^30).
pub(crate) const ENC_KEY: &str = concat!(
    "untrusted comment: minisign encrypted secret key\n",
    "RWRTY0IyHmAt2AuW+QmLpJYE2EHZBRpz4EiuWBYnE7R/2cbkFq8AAAACAAAAAAAAAEAAAAAAJzTkwXFGjMQlTjO181U5jiKm59uQgqdNXs6Lzvge1JykSndDOSiAcrXDkK1ratQdutp9zgEkmxK9yf/0ASsPOlqfxkBdRLlrIZA8isIlzbmPdoOv62vdSNjLEcDKgNRexIr182ENjFY=\n",
);

/// The password of [`ENC_KEY`].
pub(crate) const ENC_PASSWORD: &str = "correct horse";

/// Signature of [`MESSAGE`] made by minisign with [`ENC_KEY`] (default comments).
pub(crate) const ENC_MINISIG: &str = concat!(
    "untrusted comment: signature from minisign secret key\n",
    "RUSgTj5dQxDm6NatJ0vsMQdgabYQHT63g3odivBGrMVpm8gP2FJn5aIbXeY1E+fLp9HUsTLtaP3vEdyIlv46a1tB7YKmvNuQTAA=\n",
    "trusted comment: timestamp:1795773427\tfile:msg.txt\thashed\n",
    "nabh33wtkxIvHexKz9J3D+QrafhUPIIplk4/9MhJu5+VMD6J48MSqYyl+IBFMSlnq/8535Lawk/wwTf5ThIbBg==\n",
);

/// A public key whose id starts with a 0 nibble: minisign writes 15 hex digits.
pub(crate) const SHORT_ID_PUB: &str = concat!(
    "untrusted comment: minisign public key 2699D3B92C9858A\n",
    "RWSKhcmSO51pAhP4N/KgK27XxtrJLCPdWLutWw20DI2tt0MEzfqSkA6D\n",
);
