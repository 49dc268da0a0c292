//! `Forward`: a class attribute that hands out the bound method of an instance's `_native`
//! object. `ferrossl.SSL.Connection`'s I/O methods are forwards: a call reaches the native
//! method with no Python frame in between (most of a small read's or write's cost, and more
//! when an exception such as WantReadError passes through a frame), while the method stays a
//! class attribute that subclasses override and `unittest.mock.patch` replaces, as programs
//! written for pyOpenSSL expect.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

#[pyclass(module = "ferrossl._native", frozen)]
pub struct Forward {
    /// The native method's name.
    name: Py<PyString>,
    #[pyo3(get, name = "__doc__")]
    doc: Option<String>,
}

#[pymethods]
impl Forward {
    #[new]
    #[pyo3(signature = (name, doc=None))]
    fn new(name: Bound<'_, PyString>, doc: Option<String>) -> Self {
        Self {
            name: name.unbind(),
            doc,
        }
    }

    /// On the class, the forward itself; on an instance, `instance._native.<name>`.
    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        instance: &Bound<'py, PyAny>,
        _owner: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if instance.is_none() {
            return Ok(slf.clone().into_any());
        }
        instance
            .getattr(intern!(py, "_native"))?
            .getattr(slf.get().name.bind(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<forward to _native.{}>", self.name.bind(py))
    }
}
