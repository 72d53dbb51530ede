//! Kubernetes test environment: a real etcd and kube-apiserver on loopback.
//!
//! [`KubeEnv::start`] runs `scripts/kube-env.sh install` once per process (it
//! finds or builds the binaries and caches them outside the repository; the
//! first build takes about ten minutes) and then `scripts/kube-env.sh start`
//! in a fresh temporary directory. The server is kube-apiserver 1.20 built
//! from Debian's source (or whatever `KUBEBUILDER_ASSETS` holds), with RBAC,
//! a static admin token in `system:masters` and ServiceAccount token issuance.
//! Dropping the [`KubeEnv`] stops etcd and kube-apiserver; if the test process
//! is killed instead, a watchdog started with them stops them.
//!
//! There is no controller manager, scheduler or kubelet:
//! - ServiceAccounts get no token Secrets; use [`KubeEnv::service_account_token`]
//!   (the TokenRequest API) instead.
//! - There is no garbage collector: ownerReferences do not cascade.
//! - Deleted namespaces stay `Terminating` (no namespace controller); creating
//!   namespaces works, and `default` and `kube-system` exist from the start.
//!
//! ```no_run
//! # use linkmeter_tests::kube_env::KubeEnv;
//! # fn main() -> anyhow::Result<()> {
//! let Some(kube) = KubeEnv::start_or_skip()? else { return Ok(()) };
//! kube.kubectl_ok(&["get", "ns", "default"])?;
//! # Ok(()) }
//! ```
//!
//! Without a working environment, [`KubeEnv::start`] fails with the script's
//! message; set `LINKMETER_SKIP_KUBE=1` to make [`KubeEnv::start_or_skip`]
//! skip instead.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail, ensure};

/// Set to `1` to skip Kubernetes tests on machines that cannot run the
/// environment.
pub const SKIP_ENV: &str = "LINKMETER_SKIP_KUBE";

/// Where `scripts/kube-env.sh` lives, from this crate's manifest directory.
pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("kube-env.sh")
}

/// The binaries `kube-env.sh install` settled on.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// etcd server.
    pub etcd: PathBuf,
    /// kube-apiserver.
    pub kube_apiserver: PathBuf,
    /// kubectl.
    pub kubectl: PathBuf,
    /// kube-scheduler, when one was built (or is in `KUBEBUILDER_ASSETS`); see
    /// [`crate::kube_scheduler`].
    pub kube_scheduler: Option<PathBuf>,
}

/// Runs `kube-env.sh install` the first time it is called in this process
/// and returns its result every time after. The script itself is idempotent
/// and takes a lock, so other test processes installing at the same time are
/// fine; this only saves the repeated check.
pub fn install() -> Result<Binaries> {
    static INSTALLED: OnceLock<std::result::Result<Binaries, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| run_install().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

fn run_install() -> Result<Binaries> {
    let out = run_script(&["install"], &[])?;
    let vars = parse_env(&String::from_utf8_lossy(&out.stdout));
    let path = |key: &str| -> Result<PathBuf> {
        vars.get(key)
            .map(PathBuf::from)
            .with_context(|| format!("kube-env.sh install printed no {key}="))
    };
    Ok(Binaries {
        etcd: path("ETCD")?,
        kube_apiserver: path("KUBE_APISERVER")?,
        kubectl: path("KUBECTL")?,
        kube_scheduler: vars.get("KUBE_SCHEDULER").map(PathBuf::from),
    })
}

/// Runs the script with `args`; fails with its stderr when it exits non-zero.
fn run_script(args: &[&str], env: &[(&str, String)]) -> Result<Output> {
    let script = script_path();
    let mut cmd = Command::new("bash");
    cmd.arg(&script).args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    ensure!(
        out.status.success(),
        "`kube-env.sh {}` failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim_end()
    );
    Ok(out)
}

/// Parses `KEY=VALUE` lines (what the script prints and writes to `DIR/env`).
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A running etcd + kube-apiserver pair with its state in a temporary
/// directory. Dropping it stops both and removes the directory.
#[derive(Debug)]
pub struct KubeEnv {
    dir: tempfile::TempDir,
    binaries: Binaries,
    server_url: String,
    admin_token: String,
    kubeconfig: PathBuf,
    apiserver_port: u16,
}

/// Counter for kubeconfig file names, unique within the process.
static KUBECONFIGS: AtomicUsize = AtomicUsize::new(0);

impl KubeEnv {
    /// Installs (once per process, cached across runs) and starts a fresh
    /// environment. Fails with the script's output, including the tail of the
    /// kube-apiserver log, when the server does not come up.
    pub fn start() -> Result<Self> {
        Self::start_bound(None)
    }

    /// Like [`KubeEnv::start`], with kube-apiserver listening on `bind` instead of
    /// 127.0.0.1 (`LINKMETER_KUBE_BIND`). `bind` must already be an address of this
    /// host, e.g. one from [`crate::lab::Lab::host_address`] that lab namespaces reach through
    /// [`crate::lab::Lab::link_to_host`]. etcd stays on loopback.
    pub fn start_bound(bind: Option<std::net::Ipv4Addr>) -> Result<Self> {
        let binaries = install().context(
            "installing the Kubernetes test environment (scripts/kube-env.sh install); \
             set LINKMETER_SKIP_KUBE=1 to skip Kubernetes tests",
        )?;
        // Two environments starting at the same moment can pick the same free
        // port; the loser fails to bind, so try once more with new ports.
        let mut last_err = None;
        for _ in 0..3 {
            match Self::start_once(binaries.clone(), bind) {
                Ok(env) => return Ok(env),
                Err(e) if format!("{e:#}").contains("address already in use") => {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("kube-env start failed")))
    }

    fn start_once(binaries: Binaries, bind: Option<std::net::Ipv4Addr>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("linkmeter-kube-")
            .tempdir()
            .context("creating a temporary directory for the Kubernetes environment")?;
        let dir_str = dir
            .path()
            .to_str()
            .context("temporary directory path is not UTF-8")?
            .to_owned();
        let mut env = vec![
            // The script's watchdog stops everything if this process dies
            // without dropping the environment.
            ("LINKMETER_KUBE_OWNER_PID", std::process::id().to_string()),
            // Use exactly the binaries install() reported.
            ("KUBECTL", binaries.kubectl.display().to_string()),
        ];
        if let Some(addr) = bind {
            env.push(("LINKMETER_KUBE_BIND", addr.to_string()));
        }
        run_script(&["start", &dir_str], &env).context(
            "starting the Kubernetes test environment; set LINKMETER_SKIP_KUBE=1 to skip",
        )?;
        let env_text = std::fs::read_to_string(dir.path().join("env"))
            .context("reading the environment file the script wrote")?;
        let vars = parse_env(&env_text);
        let get = |key: &str| -> Result<String> {
            vars.get(key)
                .cloned()
                .with_context(|| format!("{key} missing from {}/env", dir_str))
        };
        let apiserver_port = get("APISERVER_PORT")?
            .parse()
            .context("APISERVER_PORT is not a port")?;
        Ok(Self {
            server_url: get("SERVER_URL")?,
            admin_token: get("ADMIN_TOKEN")?,
            kubeconfig: dir.path().join("kubeconfig"),
            apiserver_port,
            binaries,
            dir,
        })
    }

    /// Like [`KubeEnv::start`], but returns `None` (after printing a skip
    /// line) when `LINKMETER_SKIP_KUBE=1`. Tests use it as
    /// `let Some(kube) = KubeEnv::start_or_skip()? else { return Ok(()) };`.
    pub fn start_or_skip() -> Result<Option<Self>> {
        if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
            println!("SKIPPED: Kubernetes test ({SKIP_ENV}=1)");
            return Ok(None);
        }
        Self::start().map(Some)
    }

    /// The directory with the environment's state and logs
    /// (`kube-apiserver.log`, `etcd.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The admin kubeconfig (static token in `system:masters`, TLS
    /// verification off).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:PORT` (or the address given to [`KubeEnv::start_bound`]).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The kube-apiserver's port; it stays the same across
    /// [`KubeEnv::stop_apiserver`] / [`KubeEnv::start_apiserver`].
    pub fn apiserver_port(&self) -> u16 {
        self.apiserver_port
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The binaries in use.
    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// A `kubectl` command already pointed at this environment as admin.
    pub fn kubectl(&self) -> Command {
        self.kubectl_with(&self.kubeconfig)
    }

    /// A `kubectl` command using another kubeconfig, e.g. one from
    /// [`KubeEnv::kubeconfig_for_token`].
    pub fn kubectl_with(&self, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new(&self.binaries.kubectl);
        cmd.arg("--kubeconfig").arg(kubeconfig).stdin(Stdio::null());
        cmd
    }

    /// Runs admin `kubectl ARGS` and returns its stdout; fails with its
    /// stderr when it exits non-zero.
    pub fn kubectl_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        checked_output(self.kubectl().args(args))
    }

    /// Admin `kubectl apply --server-side --field-manager=MANAGER SOURCE PATH` (SOURCE
    /// is `-f` or `-k`), then waits until the NodeTopology CRD is established, so the
    /// caller can use the type at once. Returns apply's stdout.
    pub fn apply_and_wait_for_crd(
        &self,
        manager: &str,
        source: &str,
        path: &str,
    ) -> Result<String> {
        let out = self.kubectl_ok(&[
            "apply",
            "--server-side",
            &format!("--field-manager={manager}"),
            source,
            path,
        ])?;
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/nodetopologies.linkmeter.dev",
        ])?;
        Ok(out)
    }

    /// Runs admin `kubectl ARGS` with `stdin` on its standard input (for
    /// `apply -f -`).
    pub fn kubectl_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &str) -> Result<String> {
        use std::io::Write as _;
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning kubectl")?;
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(stdin.as_bytes())
            .context("writing kubectl's stdin")?;
        let out = child.wait_with_output().context("waiting for kubectl")?;
        output_text(&out, "kubectl")
    }

    /// A token for ServiceAccount `ns/name` from the TokenRequest API
    /// (`POST .../serviceaccounts/NAME/token`), valid for `expiration_secs`
    /// (the server enforces at least 600). The ServiceAccount must exist.
    /// There is no token controller here, so this is the only way to get one.
    pub fn service_account_token(
        &self,
        ns: &str,
        name: &str,
        expiration_secs: u64,
    ) -> Result<String> {
        let url = format!(
            "{}/api/v1/namespaces/{ns}/serviceaccounts/{name}/token",
            self.server_url
        );
        let body = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": { "expirationSeconds": expiration_secs },
        })
        .to_string();
        let resp = self.curl_admin(
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data",
                &body,
            ],
            &url,
        )?;
        ensure!(
            resp.status == 201 || resp.status == 200,
            "TokenRequest for {ns}/{name} answered HTTP {}: {}",
            resp.status,
            resp.body
        );
        let json: serde_json::Value =
            serde_json::from_str(&resp.body).context("TokenRequest response is not JSON")?;
        json.pointer("/status/token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .with_context(|| format!("TokenRequest response has no status.token: {}", resp.body))
    }

    /// Makes a request to the API server as admin with `curl -k` and returns
    /// the HTTP status and body. `extra` goes before the URL (method, headers,
    /// data).
    pub fn curl_admin(&self, extra: &[&str], url: &str) -> Result<HttpResponse> {
        curl(&self.admin_token, extra, url)
    }

    /// Writes a kubeconfig for this server that authenticates with `token`
    /// and returns its path (inside [`KubeEnv::dir`]).
    pub fn kubeconfig_for_token(&self, token: &str) -> Result<PathBuf> {
        let n = KUBECONFIGS.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("kubeconfig-token-{n}"));
        let mut text = String::new();
        // writeln! to a String cannot fail; the Result only satisfies fmt::Write.
        let _ = writeln!(
            text,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: linkmeter-test\n  cluster:\n    \
             server: {}\n    insecure-skip-tls-verify: true\nusers:\n- name: token\n  user:\n    \
             token: {token}\ncontexts:\n- name: linkmeter-test\n  context:\n    cluster: \
             linkmeter-test\n    user: token\ncurrent-context: linkmeter-test",
            self.server_url
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Stops kube-apiserver only; etcd and its data stay. For outage tests.
    pub fn stop_apiserver(&self) -> Result<()> {
        run_script(&["stop-apiserver", self.dir_str()?], &[])?;
        Ok(())
    }

    /// Starts kube-apiserver again on the same port with the same etcd and
    /// waits until it is ready.
    pub fn start_apiserver(&self) -> Result<()> {
        run_script(&["start-apiserver", self.dir_str()?], &[])?;
        Ok(())
    }

    /// The tail of the kube-apiserver log, for failure messages.
    pub fn apiserver_log_tail(&self, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("kube-apiserver.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn dir_str(&self) -> Result<&str> {
        self.dir
            .path()
            .to_str()
            .context("environment directory is not UTF-8")
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.path().to_str()
            && let Err(e) = run_script(&["stop", dir], &[])
        {
            eprintln!("kube-env: stopping the environment in {dir} failed: {e:#}");
        }
    }
}

/// Status and body of an HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response body as text.
    pub body: String,
}

/// `curl -k` with a bearer token. The body and the status come back
/// separated by a newline that `-w` appends, so no temporary files are needed.
pub fn curl(token: &str, extra: &[&str], url: &str) -> Result<HttpResponse> {
    let out = Command::new("curl")
        .args(["-ksS", "--max-time", "30", "-w", "\n%{http_code}"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .context("running curl (apt-get install curl)")?;
    let text = output_text(&out, "curl")?;
    let (body, code) = text
        .rsplit_once('\n')
        .with_context(|| format!("curl output without a status line: {text:?}"))?;
    let status = code
        .trim()
        .parse()
        .with_context(|| format!("curl printed no HTTP status: {code:?}"))?;
    Ok(HttpResponse {
        status,
        body: body.to_owned(),
    })
}

/// Runs `cmd` and returns its stdout; fails with its stderr on a non-zero exit.
pub fn checked_output(cmd: &mut Command) -> Result<String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    output_text(&out, &program)
}

fn output_text(out: &Output, program: &str) -> Result<String> {
    if !out.status.success() {
        bail!(
            "{program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout.clone()).with_context(|| format!("{program} printed non-UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_lines() {
        let vars = parse_env("A=1\nB=https://x:1/a=b\n\nnoise\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("https://x:1/a=b"));
        assert_eq!(vars.len(), 2);
    }
}
