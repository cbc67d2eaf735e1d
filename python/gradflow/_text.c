/*
 * gradflow._text: the shortest decimal text of float32 measurements (docs/FORMAT.md, "Values"), for
 * the step records that gradflow.Run writes every step.
 *
 * The rule is _json._float32_texts's, which defines it and runs where this module was not built:
 * the value rounded to float32 ((float) of the double, ±inf out of range); "null" for inf and NaN;
 * an integer below 1e16 as one; otherwise the first of "%.6g" … "%.9g" (from "%.1g" for a
 * subnormal) whose double, rounded to float32, is the value again. A test compares the two on
 * random bit patterns. In Python the search costs about 1.4 µs a value, a step record has about a
 * hundred, and a preset-S step of the example takes 60 ms; here it costs a third of that
 * (docs/PERFORMANCE.md, "PyTorch: cost of the refinement").
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* The text of x rounded to float32, as a new str. Python's own conversions (PyOS_double_to_string,
 * which "%.*g" % x uses, and PyOS_string_to_double, which float(text) uses), not the C library's:
 * those follow LC_NUMERIC and would write "0,1" in a process whose locale has a decimal comma. */
static PyObject *f32_text(double x) {
    float v = (float)x;
    if (!isfinite(v)) return PyUnicode_FromString("null");
    if (v == truncf(v) && fabsf(v) < 1e16f) return PyUnicode_FromFormat("%lld", (long long)v);
    for (int digits = fabsf(v) >= 0x1p-126f ? 6 : 1;; digits++) {   /* ends by 9 digits */
        char *text = PyOS_double_to_string((double)v, 'g', digits, 0, NULL);
        if (!text) return NULL;
        double back = PyOS_string_to_double(text, NULL, NULL);
        if (back == -1.0 && PyErr_Occurred()) {
            PyMem_Free(text);
            return NULL;
        }
        if ((float)back == v || digits == 9) {   /* 9 digits always read back */
            PyObject *out = PyUnicode_FromString(text);
            PyMem_Free(text);
            return out;
        }
        PyMem_Free(text);
    }
}

/* f32_texts(values) -> list of str, one per float (or object with __float__) in the sequence. */
static PyObject *f32_texts(PyObject *Py_UNUSED(self), PyObject *arg) {
    /* A tuple of its own: an item's __float__ cannot change what is being read. */
    PyObject *seq = PySequence_Tuple(arg);
    if (!seq) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        double x = PyFloat_AsDouble(PyTuple_GET_ITEM(seq, i));
        PyObject *text = (x == -1.0 && PyErr_Occurred()) ? NULL : f32_text(x);
        if (!text) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, text);
    }
    Py_DECREF(seq);
    return out;
}

static PyMethodDef methods[] = {
    {"f32_texts", f32_texts, METH_O, "The shortest text that reads back as each value rounded to float32."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_text", "Float32 measurements as shortest text.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__text(void) { return PyModule_Create(&module); }
