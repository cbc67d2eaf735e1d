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
#include <stdio.h>
#include <stdlib.h>

/* The text of x rounded to float32, as a new str. */
static PyObject *f32_text(double x) {
    char buf[48];
    float v = (float)x;
    if (!isfinite(v)) return PyUnicode_FromString("null");
    if (v == truncf(v) && fabsf(v) < 1e16f) {
        snprintf(buf, sizeof buf, "%lld", (long long)v);
        return PyUnicode_FromString(buf);
    }
    for (int digits = fabsf(v) >= 0x1p-126f ? 6 : 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v) return PyUnicode_FromString(buf);
    }
    snprintf(buf, sizeof buf, "%.17g", (double)v);   /* not reached: 9 digits always read back */
    return PyUnicode_FromString(buf);
}

/* f32_texts(values) -> list of str, one per float (or object with __float__) in the sequence. */
static PyObject *f32_texts(PyObject *Py_UNUSED(self), PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "f32_texts: expected a sequence of floats");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        double x = PyFloat_AsDouble(items[i]);
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
