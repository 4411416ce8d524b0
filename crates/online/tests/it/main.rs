//! Integration tests of the online side with the real tools: charts packaged and pulled back
//! by the official helm and skopeo, ClamAV databases checked against Talos' signatures, the
//! site CA checked with openssl and age, and this repository's own input files.

mod ca;
mod charts;
mod clamav;
mod spec_files;
