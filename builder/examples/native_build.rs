//! Builds one algorithm with the native backend and prints the build log.
//!
//! ```text
//! cargo run -p builder --example native_build -- \
//!     LANGUAGE NAME VERSION CODE_DIR BASE_IMAGE TARGET [CACHE_DIR]
//! ```
//!
//! LANGUAGE is `python` or `javascript`; TARGET is `host[/namespace]` for a
//! plain-HTTP registry or `oci:DIR` for an OCI layout. Credentials, if any,
//! come from `REGISTRY_USERNAME` / `REGISTRY_PASSWORD`.

use std::path::{Path, PathBuf};

use builder::native::{build, BuildRequest, Language, RegistrySettings, Secret, Target};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!("usage: native_build LANGUAGE NAME VERSION CODE_DIR BASE_IMAGE TARGET [CACHE_DIR]");
        std::process::exit(2);
    }
    let language = Language::parse(&args[0]).expect("language: python or javascript");
    let target = match args[5].strip_prefix("oci:") {
        Some(dir) => Target::Layout(PathBuf::from(dir)),
        None => {
            let (host, namespace) = args[5].split_once('/').unwrap_or((&args[5], ""));
            Target::Registry(RegistrySettings {
                namespace: namespace.to_string(),
                insecure_http: true,
                username: std::env::var("REGISTRY_USERNAME").ok().map(Secret::from),
                password: std::env::var("REGISTRY_PASSWORD").ok().map(Secret::from),
                ..RegistrySettings::new(host)
            })
        }
    };
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../base-images");
    let wrapper = match language {
        Language::Python => images.join("python/distributedkube_wrapper"),
        Language::JavaScript => images.join("nodejs/wrapper"),
    };
    let cache = args.get(6).map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("dk-native-cache"));
    let request = BuildRequest::new(&args[1], &args[2], language, &args[3], &args[4], wrapper, target, cache);
    match build(&request, &mut |line| println!("{line}")).await {
        Ok(out) => println!("{}", out.image),
        Err(e) => {
            eprintln!("build failed: {e}");
            std::process::exit(1);
        }
    }
}
