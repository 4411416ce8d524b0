//! Integration tests of the bundle file: pack, verify and extract round trips through the
//! library, and minisign signatures checked against the real `minisign` tool.

mod minisign_interop;
mod pack_roundtrip;
