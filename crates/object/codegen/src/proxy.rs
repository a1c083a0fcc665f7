//! The client side: typed proxies whose methods call the replicated object.
//!
//! The original's four proxy types map onto one proxy shape with a call mode:
//!
//! | `-p` | original | here |
//! |---|---|---|
//! | 0 | basic | async proxy, one call at a time (`CallMode::Serial`) |
//! | 1 | blocking | blocking proxy (no async runtime needed) |
//! | 2 | client-side batching | async proxy; concurrent calls leave as one batch frame |
//! | 3 | server-side batching | async proxy; calls pipelined on one connection, batched into log slots by the leader |

use crate::model::{Method, ObjectModel, Ret};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The original's `-p PROXYTYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyType {
    /// 0: one call at a time.
    Basic,
    /// 1: blocking calls.
    Blocking,
    /// 2: calls queue locally and travel as one batch.
    ClientBatching,
    /// 3: calls pipelined; the leader batches them.
    ServerBatching,
}

impl ProxyType {
    /// From the `-p` number.
    pub fn from_number(n: u8) -> Option<ProxyType> {
        match n {
            0 => Some(ProxyType::Basic),
            1 => Some(ProxyType::Blocking),
            2 => Some(ProxyType::ClientBatching),
            3 => Some(ProxyType::ServerBatching),
            _ => None,
        }
    }
}

/// What proxies to generate and how.
#[derive(Clone, Debug)]
pub struct ProxySpec {
    /// Path of the crate re-exporting ConCoord (`::concoord`).
    pub krate: syn::Path,
    /// Token the proxy presents by default.
    pub token: Option<String>,
    /// Call mode of the async proxy's `connect`.
    pub mode: ProxyType,
    /// Name of the async proxy (none: not generated).
    pub async_name: Option<syn::Ident>,
    /// Name of the blocking proxy (none: not generated).
    pub blocking_name: Option<syn::Ident>,
    /// Allow items the including crate does not use (a standalone proxy
    /// file, which offers every constructor whether used or not).
    pub allow_unused: bool,
}

impl ProxySpec {
    /// `TypeProxy` (pipelined) and `TypeBlockingProxy`, for `#[concoord::object]`.
    pub fn both(model: &ObjectModel, krate: syn::Path) -> ProxySpec {
        ProxySpec {
            krate,
            token: None,
            mode: ProxyType::ServerBatching,
            async_name: Some(format_ident!("{}Proxy", model.ty)),
            blocking_name: Some(format_ident!("{}BlockingProxy", model.ty)),
            allow_unused: false,
        }
    }
}

struct Parts {
    params: TokenStream,
    tuple: TokenStream,
    name_str: String,
}

fn parts(m: &Method) -> Parts {
    let args = m.wire_args();
    let names: Vec<_> = args.iter().map(|a| &a.name).collect();
    let tys: Vec<_> = args.iter().map(|a| &a.ty).collect();
    Parts {
        params: quote!(#(, #names: #tys)*),
        tuple: quote!((#(#names,)*)),
        name_str: m.name.to_string(),
    }
}

fn method(m: &Method, client: &TokenStream, blocking: bool) -> TokenStream {
    let Parts {
        params,
        tuple,
        name_str,
    } = parts(m);
    let name = &m.name;
    let docs = &m.docs;
    let (asyncness, dot_await) = if blocking {
        (quote!(), quote!())
    } else {
        (quote!(async), quote!(.await))
    };
    match &m.ret {
        Ret::Fallible { ok, err } => quote! {
            #(#docs)*
            pub #asyncness fn #name(&self #params)
                -> ::core::result::Result<#ok, #client::MethodError<#err>>
            {
                self.client.call_fallible(#name_str, &#tuple)#dot_await
            }
        },
        Ret::Value(ty) | Ret::Wait(ty) => quote! {
            #(#docs)*
            pub #asyncness fn #name(&self #params) -> ::core::result::Result<#ty, #client::ClientError> {
                self.client.call(#name_str, &#tuple)#dot_await
            }
        },
        Ret::Unit => quote! {
            #(#docs)*
            pub #asyncness fn #name(&self #params) -> ::core::result::Result<(), #client::ClientError> {
                self.client.call(#name_str, &#tuple)#dot_await
            }
        },
    }
}

fn concoord_init(model: &ObjectModel, client: &TokenStream, blocking: bool) -> TokenStream {
    let args: Vec<_> = model
        .init
        .as_ref()
        .map(|i| i.args.iter().collect())
        .unwrap_or_default();
    let names: Vec<_> = args.iter().map(|a| &a.name).collect();
    let tys: Vec<_> = args.iter().map(|a| &a.ty).collect();
    let (asyncness, dot_await) = if blocking {
        (quote!(), quote!())
    } else {
        (quote!(async), quote!(.await))
    };
    quote! {
        /// Re-initialises the replicated object on every replica (the
        /// original's `__concoordinit__`).
        pub #asyncness fn concoord_init(&self #(, #names: #tys)*) -> ::core::result::Result<(), #client::ClientError> {
            self.client.call(#client::CONCOORD_INIT, &(#(#names,)*))#dot_await
        }
    }
}

fn mode_expr(client: &TokenStream, mode: ProxyType) -> TokenStream {
    match mode {
        ProxyType::Basic => quote!(#client::CallMode::Serial),
        ProxyType::ClientBatching => quote!(#client::CallMode::batched()),
        ProxyType::ServerBatching | ProxyType::Blocking => quote!(#client::CallMode::Pipelined),
    }
}

/// The proxies described by `spec`.
pub fn proxies(model: &ObjectModel, spec: &ProxySpec) -> TokenStream {
    let krate = &spec.krate;
    // Public paths only: generated signatures show `concoord::ClientError`,
    // never a hidden module.
    let client = quote!(#krate);
    let ty = model.ty.to_string();
    let token = match &spec.token {
        Some(t) => quote!(::core::option::Option::Some(::std::string::String::from(#t))),
        None => quote!(::core::option::Option::None),
    };
    let allow = if spec.allow_unused {
        quote!(#[allow(dead_code)])
    } else {
        quote!()
    };
    let mut out = TokenStream::new();
    if let Some(name) = &spec.async_name {
        let mode = mode_expr(&client, spec.mode);
        let methods = model.methods.iter().map(|m| method(m, &client, false));
        let init = concoord_init(model, &client, false);
        let doc = format!(" Client proxy for the replicated `{ty}`: call it as if it were local.");
        out.extend(quote! {
            #[doc = #doc]
            #[derive(Clone)]
            #allow
            pub struct #name {
                client: #client::Client,
            }

            #allow
            impl #name {
                /// The options `connect` uses (token and call mode).
                pub fn default_options() -> #client::ClientOptions {
                    #client::ClientOptions {
                        token: #token,
                        mode: #mode,
                        ..::core::default::Default::default()
                    }
                }

                /// Connects to the instance (`"host:port, host:port"`).
                pub async fn connect(bootstrap: &str) -> ::core::result::Result<Self, #client::ClientError> {
                    Self::connect_with(bootstrap, Self::default_options()).await
                }

                /// Connects with explicit options.
                pub async fn connect_with(
                    bootstrap: &str,
                    options: #client::ClientOptions,
                ) -> ::core::result::Result<Self, #client::ClientError> {
                    ::core::result::Result::Ok(Self {
                        client: #client::Client::connect_with(bootstrap, options).await?,
                    })
                }

                /// A proxy over an existing client (sharing its session).
                pub fn from_client(client: #client::Client) -> Self {
                    Self { client }
                }

                /// The client underneath.
                pub fn client(&self) -> &#client::Client {
                    &self.client
                }

                #(#methods)*

                #init
            }
        });
    }
    if let Some(name) = &spec.blocking_name {
        let methods = model.methods.iter().map(|m| method(m, &client, true));
        let init = concoord_init(model, &client, true);
        let doc = format!(" Blocking client proxy for the replicated `{ty}`.");
        out.extend(quote! {
            #[doc = #doc]
            #[derive(Clone)]
            #allow
            pub struct #name {
                client: #client::blocking::Client,
            }

            #allow
            impl #name {
                /// The options `connect` uses (the token).
                pub fn default_options() -> #client::ClientOptions {
                    #client::ClientOptions {
                        token: #token,
                        ..::core::default::Default::default()
                    }
                }

                /// Connects to the instance (`"host:port, host:port"`).
                pub fn connect(bootstrap: &str) -> ::core::result::Result<Self, #client::ClientError> {
                    Self::connect_with(bootstrap, Self::default_options())
                }

                /// A proxy over an existing blocking client (sharing its session).
                pub fn from_client(client: #client::blocking::Client) -> Self {
                    Self { client }
                }

                /// Connects with explicit options.
                pub fn connect_with(
                    bootstrap: &str,
                    options: #client::ClientOptions,
                ) -> ::core::result::Result<Self, #client::ClientError> {
                    ::core::result::Result::Ok(Self {
                        client: #client::blocking::Client::connect_with(bootstrap, options)?,
                    })
                }

                /// The client underneath.
                pub fn client(&self) -> &#client::blocking::Client {
                    &self.client
                }

                #(#methods)*

                #init
            }
        });
    }
    out
}

/// Method names and kinds as a constant, so a proxy can be checked against
/// the object it calls.
pub fn method_table(model: &ObjectModel, krate: &syn::Path, name: &syn::Ident) -> TokenStream {
    let obj = quote!(#krate::__private::object);
    let entries = model.methods.iter().map(|m| {
        let n = m.name.to_string();
        let k = match m.kind {
            crate::model::Kind::Read => quote!(Read),
            crate::model::Kind::Write => quote!(Write),
        };
        quote!((#n, #obj::MethodKind::#k))
    });
    quote! {
        impl #name {
            /// The methods this proxy calls, with their kinds.
            pub const METHODS: &'static [(&'static str, #obj::MethodKind)] = &[#(#entries),*];
        }
    }
}
