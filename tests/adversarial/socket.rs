//! (filled in by the socket work)

#[allow(unused_imports)]
use crate::common;
