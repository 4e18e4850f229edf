//! (filled in by the routing work)

#[allow(unused_imports)]
use crate::common;
