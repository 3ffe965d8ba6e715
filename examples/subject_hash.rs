//! Prints `<openssl subject hash> <file>` for each PEM certificate given (a debugging aid
//! for the `/etc/ssl/certs` links; the tests compare against OpenSSL's own output).
fn main() {
    for path in std::env::args().skip(1) {
        let pem = fs_err::read_to_string(&path).expect("readable file");
        let hash =
            assemble::source::deb::certs::pem_to_der(&pem).and_then(|d| assemble::source::deb::certs::subject_hash(&d));
        println!("{} {path}", hash.unwrap_or_else(|| "?".into()));
    }
}
