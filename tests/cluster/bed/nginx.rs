//! `Nginx`: nginx as a foreground child process with a prefix directory of its own (its
//! config, logs, pid file and temp files), in front of real nodes. Killed on `Drop`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A main config around an `http`-level file (as ops/nginx/dispatchd.conf is: it goes in
/// `/etc/nginx/conf.d/`): foreground, one process (no master: a SIGKILL leaves no worker
/// behind holding the port), everything under the prefix.
pub fn main_config(http_include: &Path) -> String {
    format!(
        "daemon off;\n\
         master_process off;\n\
         pid nginx.pid;\n\
         error_log stderr warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path tmp/body;\n\
         \x20   proxy_temp_path tmp/proxy;\n\
         \x20   fastcgi_temp_path tmp/fastcgi;\n\
         \x20   uwsgi_temp_path tmp/uwsgi;\n\
         \x20   scgi_temp_path tmp/scgi;\n\
         \x20   include {};\n\
         }}\n",
        http_include.display()
    )
}

/// A fresh prefix directory with `tmp/`.
pub fn prefix_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dispatchd-test-nginx-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    dir
}

/// `nginx -t` of the http-level config `http_conf`, wrapped in `main_config`. nginx -t
/// binds the listeners it names: they must be free.
pub fn check(http_conf: &str) -> Output {
    let prefix = prefix_dir();
    let conf = prefix.join("dispatchd.conf");
    std::fs::write(&conf, http_conf).unwrap();
    std::fs::write(prefix.join("nginx.conf"), main_config(&conf)).unwrap();
    let out = command(&prefix).arg("-t").output().expect("nginx runs");
    let _ = std::fs::remove_dir_all(&prefix);
    out
}

fn command(prefix: &Path) -> Command {
    let mut c = Command::new("nginx");
    c.arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        // Before the config is read, nginx logs to its compiled-in error log; send that to
        // stderr too, so nothing is written outside the prefix.
        .args(["-e", "stderr"]);
    c
}

pub struct Nginx {
    child: Child,
    prefix: PathBuf,
}

impl Nginx {
    /// Runs nginx with `http_conf` (written into a fresh prefix) and returns once it
    /// accepts connections on `port` of 127.0.0.1.
    pub fn start(http_conf: &str, port: u16) -> Nginx {
        let prefix = prefix_dir();
        let conf = prefix.join("dispatchd.conf");
        std::fs::write(&conf, http_conf).unwrap();
        std::fs::write(prefix.join("nginx.conf"), main_config(&conf)).unwrap();
        let child = command(&prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx runs");
        let mut n = Nginx { child, prefix };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                n.child.try_wait().unwrap().is_none(),
                "nginx exited (see its errors above)"
            );
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}
