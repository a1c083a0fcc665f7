//! What the generator knows about an object: its methods, their kinds,
//! arguments and return shapes. Built from an `impl` block (the object itself)
//! or from a trait of signatures (a proxy for an object defined elsewhere).

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, ImplItem, ItemImpl, ItemTrait, Pat, PathArguments,
    ReturnType, Signature, TraitItem, Type,
};

/// Whether a method changes the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `&self`: a linearizable read.
    Read,
    /// `&mut self`: a write ordered through the log.
    Write,
}

/// What a method returns.
#[derive(Clone, Debug)]
pub enum Ret {
    /// Nothing (`()`).
    Unit,
    /// A value.
    Value(Box<Type>),
    /// `Wait<T>`: the value now, or the caller blocks until the object wakes
    /// it with a `T`.
    Wait(Box<Type>),
    /// `Result<ok, err>`: the error reaches the client typed.
    Fallible {
        /// The success type.
        ok: Box<Type>,
        /// The error type.
        err: Box<Type>,
    },
}

/// One wire argument.
#[derive(Clone, Debug)]
pub struct Arg {
    /// Parameter name.
    pub name: syn::Ident,
    /// Its (owned) type.
    pub ty: Type,
}

/// A parameter as the method declares it.
#[derive(Clone, Debug)]
pub enum Param {
    /// Decoded from the call's arguments.
    Wire(Box<Arg>),
    /// The `&mut CallContext` of the call (who calls, and blocking support).
    Context,
}

/// One exposed method.
#[derive(Clone, Debug)]
pub struct Method {
    /// Its name.
    pub name: syn::Ident,
    /// Read or write.
    pub kind: Kind,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// Return shape.
    pub ret: Ret,
    /// Its doc comments, copied to the proxy.
    pub docs: Vec<Attribute>,
}

impl Method {
    /// The parameters that travel on the wire.
    pub fn wire_args(&self) -> Vec<&Arg> {
        self.params
            .iter()
            .filter_map(|p| match p {
                Param::Wire(a) => Some(&**a),
                Param::Context => None,
            })
            .collect()
    }
}

/// The constructor marked `#[concoord(init)]`.
#[derive(Clone, Debug)]
pub struct Init {
    /// Its name.
    pub name: syn::Ident,
    /// Its arguments.
    pub args: Vec<Arg>,
}

/// An object, as far as dispatch and proxies are concerned.
#[derive(Clone, Debug)]
pub struct ObjectModel {
    /// The type (or, for a proxy trait, the trait's name).
    pub ty: syn::Ident,
    /// Exposed methods.
    pub methods: Vec<Method>,
    /// The re-initialising constructor, if any.
    pub init: Option<Init>,
    /// `#[concoord(on_cancel)] fn(&mut self, &mut CallContext, Waiter) -> bool`.
    pub on_cancel: Option<syn::Ident>,
    /// `#[concoord(on_expire)] fn(&mut self, &mut CallContext, u64)`.
    pub on_expire: Option<syn::Ident>,
    /// `#[concoord(on_reinit)] fn(&self, fresh: &mut Self)`.
    pub on_reinit: Option<syn::Ident>,
}

impl ObjectModel {
    /// One line per method, for people: kind, name, arguments, result.
    pub fn describe(&self) -> Vec<String> {
        let text = |t: &Type| quote::quote!(#t).to_string();
        self.methods
            .iter()
            .map(|m| {
                let kind = match m.kind {
                    Kind::Read => "read ",
                    Kind::Write => "write",
                };
                let args: Vec<String> = m
                    .params
                    .iter()
                    .map(|p| match p {
                        Param::Wire(a) => format!("{}: {}", a.name, text(&a.ty)),
                        Param::Context => "(call context)".into(),
                    })
                    .collect();
                let ret = match &m.ret {
                    Ret::Unit => String::new(),
                    Ret::Value(t) => format!(" -> {}", text(t)),
                    Ret::Wait(t) => format!(" -> {} (may block)", text(t)),
                    Ret::Fallible { ok, err } => {
                        format!(" -> {}, or error {}", text(ok), text(err))
                    }
                };
                format!("  {kind} {}({}){ret}", m.name, args.join(", "))
            })
            .collect()
    }
}

fn err(span: Span, msg: &str) -> syn::Error {
    syn::Error::new(span, msg)
}

/// Whether the attributes hold `#[concoord(init)]`.
pub fn is_init(attrs: &[Attribute]) -> bool {
    has_helper(attrs, "init")
}

/// Whether the attributes hold `#[concoord(<name>)]`.
fn has_helper(attrs: &[Attribute], name: &str) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("concoord") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == name)
    })
}

/// Removes `#[concoord(...)]` helper attributes (the compiler does not know them).
pub fn strip_helper_attrs(item: &mut ItemImpl) {
    for it in &mut item.items {
        if let ImplItem::Fn(f) = it {
            f.attrs.retain(|a| !a.path().is_ident("concoord"));
        }
    }
}

fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

fn is_call_context(ty: &Type) -> bool {
    let Type::Reference(r) = ty else {
        return false;
    };
    let Type::Path(p) = &*r.elem else {
        return false;
    };
    p.path
        .segments
        .last()
        .is_some_and(|s| s.ident == "CallContext")
}

fn params(sig: &Signature, kind: Option<Kind>) -> syn::Result<Vec<Param>> {
    let mut out = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(pt) = input else {
            continue;
        };
        if is_call_context(&pt.ty) {
            if kind == Some(Kind::Read) {
                return Err(err(
                    pt.span(),
                    "a read method (&self) gets no CallContext; take &mut self to use it",
                ));
            }
            out.push(Param::Context);
            continue;
        }
        let Pat::Ident(pi) = &*pt.pat else {
            return Err(err(
                pt.pat.span(),
                "use a plain parameter name (patterns are not supported)",
            ));
        };
        if matches!(*pt.ty, Type::Reference(_)) {
            return Err(err(
                pt.ty.span(),
                "parameters must be owned types (e.g. String, not &str): arguments are decoded from the wire",
            ));
        }
        if matches!(*pt.ty, Type::ImplTrait(_)) {
            return Err(err(pt.ty.span(), "impl Trait parameters are not supported"));
        }
        out.push(Param::Wire(Box::new(Arg {
            name: pi.ident.clone(),
            ty: (*pt.ty).clone(),
        })));
    }
    Ok(out)
}

fn ret(output: &ReturnType) -> Ret {
    let ReturnType::Type(_, ty) = output else {
        return Ret::Unit;
    };
    if let Type::Tuple(t) = &**ty
        && t.elems.is_empty()
    {
        return Ret::Unit;
    }
    if let Type::Path(p) = &**ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Wait"
        && let PathArguments::AngleBracketed(ab) = &last.arguments
        && let [GenericArgument::Type(t)] = ab.args.iter().collect::<Vec<_>>().as_slice()
    {
        return Ret::Wait(Box::new(t.clone()));
    }
    if let Type::Path(p) = &**ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(ab) = &last.arguments
    {
        let tys: Vec<&Type> = ab
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect();
        if let [ok, e] = tys.as_slice() {
            return Ret::Fallible {
                ok: Box::new((*ok).clone()),
                err: Box::new((*e).clone()),
            };
        }
    }
    Ret::Value(ty.clone())
}

fn check_signature(sig: &Signature) -> syn::Result<()> {
    if sig.asyncness.is_some() {
        return Err(err(
            sig.span(),
            "replicated methods cannot be async: they run inside the replica's state machine",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(err(
            sig.generics.span(),
            "replicated methods cannot be generic",
        ));
    }
    Ok(())
}

fn method(sig: &Signature, attrs: &[Attribute]) -> syn::Result<Option<Method>> {
    let Some(recv) = sig.receiver() else {
        return Ok(None);
    };
    if recv.reference.is_none() {
        return Err(err(
            recv.span(),
            "take &self (a read) or &mut self (a write), not self",
        ));
    }
    check_signature(sig)?;
    let kind = if recv.mutability.is_some() {
        Kind::Write
    } else {
        Kind::Read
    };
    let params = params(sig, Some(kind))?;
    let ret = ret(&sig.output);
    if matches!(ret, Ret::Wait(_))
        && (kind == Kind::Read || !params.iter().any(|p| matches!(p, Param::Context)))
    {
        return Err(err(
            sig.output.span(),
            "a blocking method (returning Wait<T>) takes &mut self and ctx: &mut CallContext, \
             to queue ctx.waiter() and wake it later",
        ));
    }
    Ok(Some(Method {
        name: sig.ident.clone(),
        kind,
        params,
        ret,
        docs: docs(attrs),
    }))
}

fn init(sig: &Signature) -> syn::Result<Init> {
    check_signature(sig)?;
    if sig.receiver().is_some() {
        return Err(err(
            sig.span(),
            "#[concoord(init)] goes on a constructor (no self) that returns Self",
        ));
    }
    let args = params(sig, None)?
        .into_iter()
        .map(|p| match p {
            Param::Wire(a) => Ok(*a),
            Param::Context => Err(err(sig.span(), "a constructor gets no CallContext")),
        })
        .collect::<syn::Result<Vec<_>>>()?;
    Ok(Init {
        name: sig.ident.clone(),
        args,
    })
}

/// The model of an object from its inherent `impl` block: every `pub` method
/// taking `&self` or `&mut self`, and the `#[concoord(init)]` constructor.
pub fn from_impl(item: &ItemImpl) -> syn::Result<ObjectModel> {
    if item.trait_.is_some() {
        return Err(err(
            item.span(),
            "put #[concoord::object] on the object's own impl block, not on a trait impl",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(err(
            item.generics.span(),
            "generic objects are not supported",
        ));
    }
    let Type::Path(tp) = &*item.self_ty else {
        return Err(err(item.self_ty.span(), "expected a type name"));
    };
    let Some(ty) = tp.path.get_ident().cloned() else {
        return Err(err(
            tp.span(),
            "write the type's plain name (impl MyObject { … })",
        ));
    };
    let mut model = ObjectModel::named(ty);
    for it in &item.items {
        let ImplItem::Fn(f) = it else {
            continue;
        };
        if is_init(&f.attrs) {
            if model.init.is_some() {
                return Err(err(f.sig.span(), "only one #[concoord(init)] constructor"));
            }
            model.init = Some(init(&f.sig)?);
            continue;
        }
        if has_helper(&f.attrs, "on_cancel") {
            model.on_cancel = Some(f.sig.ident.clone());
            continue;
        }
        if has_helper(&f.attrs, "on_expire") {
            model.on_expire = Some(f.sig.ident.clone());
            continue;
        }
        if has_helper(&f.attrs, "on_reinit") {
            model.on_reinit = Some(f.sig.ident.clone());
            continue;
        }
        if !matches!(f.vis, syn::Visibility::Public(_)) {
            continue; // private helpers stay private
        }
        if let Some(m) = method(&f.sig, &f.attrs)? {
            model.methods.push(m);
        }
    }
    check_names(&model)?;
    Ok(model)
}

impl ObjectModel {
    /// A model of `ty` with no methods and no hooks yet.
    fn named(ty: syn::Ident) -> ObjectModel {
        ObjectModel {
            ty,
            methods: Vec::new(),
            init: None,
            on_cancel: None,
            on_expire: None,
            on_reinit: None,
        }
    }
}

/// The model of an object from a trait listing its method signatures (for a
/// proxy of an object defined in another crate).
pub fn from_trait(item: &ItemTrait) -> syn::Result<ObjectModel> {
    let mut model = ObjectModel::named(item.ident.clone());
    for it in &item.items {
        let TraitItem::Fn(f) = it else {
            continue;
        };
        if is_init(&f.attrs) {
            model.init = Some(init(&f.sig)?);
            continue;
        }
        match method(&f.sig, &f.attrs)? {
            Some(m) => model.methods.push(m),
            None => {
                return Err(err(
                    f.sig.span(),
                    "list methods with &self or &mut self, or mark the constructor #[concoord(init)]",
                ));
            }
        }
    }
    check_names(&model)?;
    Ok(model)
}

fn check_names(model: &ObjectModel) -> syn::Result<()> {
    for m in &model.methods {
        if m.name == "concoord_init" || m.name.to_string().starts_with("__") {
            return Err(err(
                m.name.span(),
                "this name is reserved by ConCoord (concoord_init re-initialises the object)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(src: &str) -> syn::Result<ObjectModel> {
        from_impl(&syn::parse_str::<ItemImpl>(src).expect("valid impl"))
    }

    #[test]
    fn receivers_decide_read_or_write_and_private_helpers_are_skipped() {
        let m = model(
            "impl C { pub fn inc(&mut self) {} pub fn get(&self) -> i64 { 0 } fn helper(&self) {} pub fn new() -> Self { C } }",
        )
        .expect("valid");
        let kinds: Vec<(String, Kind)> = m
            .methods
            .iter()
            .map(|m| (m.name.to_string(), m.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![("inc".into(), Kind::Write), ("get".into(), Kind::Read)]
        );
    }

    #[test]
    fn result_returns_are_fallible_and_context_params_are_not_wire_args() {
        let m = model(
            "impl B { pub fn debit(&mut self, ctx: &mut CallContext, who: String, n: i64) -> Result<i64, BankError> { todo!() } }",
        )
        .expect("valid");
        let debit = &m.methods[0];
        assert!(matches!(debit.ret, Ret::Fallible { .. }));
        assert_eq!(debit.wire_args().len(), 2);
        assert!(matches!(debit.params[0], Param::Context));
    }

    #[test]
    fn borrowed_parameters_and_self_by_value_are_rejected() {
        assert!(model("impl C { pub fn put(&mut self, k: &str) {} }").is_err());
        assert!(model("impl C { pub fn eat(self) {} }").is_err());
        assert!(model("impl C { pub async fn a(&self) {} }").is_err());
    }

    #[test]
    fn the_init_constructor_is_found() {
        let m = model("impl C { #[concoord(init)] pub fn start(v: i64) -> Self { C } }")
            .expect("valid");
        assert_eq!(m.init.map(|i| i.args.len()), Some(1));
    }
}
