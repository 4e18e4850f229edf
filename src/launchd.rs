//! launchd (macOS): the socket a LaunchAgent's `Sockets` entry created, taken
//! with `launch_activate_socket`, and the LaunchAgent plist itself.
//!
//! launchd does not reap the children of a job that made themselves session
//! leaders (our backends): the daemon stops them itself on the way out.

use std::path::Path;

/// The plist template (`launchd/com.mcp-gateway.plist.in`).
pub const TEMPLATE: &str = include_str!("../launchd/com.mcp-gateway.plist.in");

/// The LaunchAgent's label (and plist file name without `.plist`).
pub const LABEL: &str = "com.mcp-gateway";

/// The plist with absolute paths filled in (launchd expands neither `~` nor variables).
pub fn plist(binary: &Path, socket: &Path, log: &Path) -> String {
    let escape = |p: &Path| p.display().to_string().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    TEMPLATE.replace("@BIN@", &escape(binary)).replace("@SOCKET@", &escape(socket)).replace("@LOG@", &escape(log))
}

/// The listener launchd created for the `Sockets` entry `name`, when launched by launchd.
#[cfg(target_os = "macos")]
pub fn activated_listener(name: &str) -> Option<std::os::unix::net::UnixListener> {
    use std::ffi::{CString, c_char, c_int, c_void};
    use std::os::fd::FromRawFd;
    unsafe extern "C" {
        fn launch_activate_socket(name: *const c_char, fds: *mut *mut c_int, cnt: *mut usize) -> c_int;
        fn free(ptr: *mut c_void);
    }
    let name = CString::new(name).ok()?;
    let mut fds: *mut c_int = std::ptr::null_mut();
    let mut count: usize = 0;
    // SAFETY: launch_activate_socket fills `fds` with a malloc'd array of `count`
    // descriptors that we now own; we free the array and keep the first descriptor.
    unsafe {
        if launch_activate_socket(name.as_ptr(), &mut fds, &mut count) != 0 || fds.is_null() || count == 0 {
            return None;
        }
        let all = std::slice::from_raw_parts(fds, count).to_vec();
        free(fds.cast());
        for extra in &all[1..] {
            drop(std::os::fd::OwnedFd::from_raw_fd(*extra));
        }
        Some(std::os::unix::net::UnixListener::from_raw_fd(all[0]))
    }
}

/// Not macOS: no launchd.
#[cfg(not(target_os = "macos"))]
pub fn activated_listener(_name: &str) -> Option<std::os::unix::net::UnixListener> {
    None
}
