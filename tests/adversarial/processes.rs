//! (filled in by the processes work)

#[allow(unused_imports)]
use crate::common;
