//! Test certificates made by `openssl`: a CA, and certificates it signs for a server on
//! localhost / 127.0.0.1 or for a client. Files live in a temporary directory kept with the CA.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA and its directory.
pub struct TestCa {
    /// The CA's certificate (PEM file).
    pub cert: PathBuf,
    dir: tempfile::TempDir,
}

/// A certificate the CA signed, with its key.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Leaf {
    pub fn cert_pem(&self) -> String {
        std::fs::read_to_string(&self.cert).unwrap()
    }

    pub fn key_pem(&self) -> String {
        std::fs::read_to_string(&self.key).unwrap()
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("openssl makes the test certificates");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca-key.pem"));
        let subject = format!("/CN={name}");
        openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", &subject, "-keyout", &text(&key), "-out", &text(&cert)]);
        Self { cert, dir }
    }

    pub fn cert_pem(&self) -> String {
        std::fs::read_to_string(&self.cert).unwrap()
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self, name: &str) -> Leaf {
        self.sign(name, "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    }

    /// A client certificate (TLS client authentication).
    pub fn client(&self, name: &str) -> Leaf {
        self.sign(name, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    }

    fn sign(&self, name: &str, extensions: &str) -> Leaf {
        let path = |suffix: &str| self.dir.path().join(format!("{name}{suffix}"));
        let (cert, key, csr, ext) = (path(".pem"), path("-key.pem"), path(".csr"), path(".ext"));
        let subject = format!("/CN={name}");
        openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", &subject, "-keyout", &text(&key), "-out", &text(&csr)]);
        std::fs::write(&ext, extensions).unwrap();
        let ca_key = text(&self.dir.path().join("ca-key.pem"));
        openssl(&[
            "x509",
            "-req",
            "-in",
            &text(&csr),
            "-CA",
            &text(&self.cert),
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &text(&ext),
            "-out",
            &text(&cert),
        ]);
        Leaf { cert, key }
    }
}

/// A TLS server configuration presenting `leaf`; with `clients`, it requires a client
/// certificate that CA signed.
pub fn server_tls(leaf: &Leaf, clients: Option<&TestCa>) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = match clients {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from_pem_file(&ca.cert).unwrap()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = CertificateDer::pem_file_iter(&leaf.cert).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    std::sync::Arc::new(builder.with_single_cert(chain, PrivateKeyDer::from_pem_file(&leaf.key).unwrap()).unwrap())
}
