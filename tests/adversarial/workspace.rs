//! (filled in by the workspace work)

#[allow(unused_imports)]
use crate::common;
