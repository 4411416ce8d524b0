//! Integration tests of the capacity check on the real stack chart and the example site,
//! with `helm template` as the reference for what the chart renders.

mod profiles;
