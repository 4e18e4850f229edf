//! (filled in by the front_door work)

#[allow(unused_imports)]
use crate::common;
