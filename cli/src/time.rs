//! Times as text: see [`strata_core::time`].

pub(crate) use strata_core::time::{parse, rfc3339};
