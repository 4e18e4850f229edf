//! `preamble::parse` on arbitrary bytes: it never panics, a refusal always
//! says why, and an accepted preamble round-trips through serde unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::preamble::{PREAMBLE_VERSION, Preamble, parse};

fuzz_target!(|data: &[u8]| {
    let preamble = match parse(data) {
        Ok(preamble) => preamble,
        Err(reason) => {
            assert!(!reason.is_empty(), "a refusal without a reason");
            return;
        }
    };
    assert_eq!(preamble.mcp_gateway_preamble, PREAMBLE_VERSION, "accepted another version");

    // What the shim would send for this preamble is accepted again, as the same preamble.
    let line = serde_json::to_vec(&preamble).expect("an accepted preamble serialises");
    assert!(!line.contains(&b'\n'), "a preamble must stay one line");
    let again: Preamble =
        parse(&line).unwrap_or_else(|e| panic!("re-parse of {:?} failed: {e}", String::from_utf8_lossy(&line)));
    assert_eq!(serde_json::to_vec(&again).unwrap(), line, "serde round trip changed the preamble");
    assert_eq!(again.cwd, preamble.cwd);
    assert_eq!(again.env.0, preamble.env.0);
    assert_eq!(again.control, preamble.control);
    assert_eq!(again.profile, preamble.profile);
    assert_eq!(again.client_pid, preamble.client_pid);
    assert_eq!(again.shim_version, preamble.shim_version);
});
