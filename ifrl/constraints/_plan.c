/* The per-check bookkeeping of ``engine.verify_batch``, as C loops over the batch's lists:
 * grouping the checks by id, validating each id's kwargs, cutting the verdicts into rows.
 *
 * ``engine._group_py``, ``registry._make_validator_py`` and ``engine._rows_py`` are the
 * Python definitions, and the fallback where this module is not built (``native.py``);
 * tests/constraints/test_native_plan.py checks that both give the same objects.
 * Anything irregular (a row that is not a list, lengths that differ, an id that is not a
 * str or not registered) makes ``group`` return None: the Python path then normalises the
 * row or raises the error that names it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* group(id_lists, kwargs_lists, row_texts, registry) -> (groups, starts, blank) or None
 *
 * groups: {id: [spec, [kwargs], [text], [flat index]]}, ids in order of first use;
 * starts: the flat index of each row's first check, then the number of checks;
 * blank: whether some row text is None. */
static PyObject *group(PyObject *self, PyObject *args) {
    PyObject *ids_l, *kws_l, *texts_l, *reg;
    if (!PyArg_ParseTuple(args, "O!O!O!O!:group", &PyList_Type, &ids_l, &PyList_Type, &kws_l, &PyList_Type,
                          &texts_l, &PyDict_Type, &reg))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(texts_l);
    if (PyList_GET_SIZE(ids_l) != n || PyList_GET_SIZE(kws_l) != n)
        Py_RETURN_NONE;
    PyObject *groups = PyDict_New();
    PyObject *starts = PyList_New(n + 1); /* unset items are NULL: freeing the list skips them */
    if (groups == NULL || starts == NULL)
        goto fail;
    Py_ssize_t k = 0;
    int blank = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        /* Only C code runs while the lists are read (str keys hash and compare in C; the
         * engine pauses the garbage collector), and every read is bounds-checked anyway. */
        if (r >= PyList_GET_SIZE(ids_l) || r >= PyList_GET_SIZE(kws_l) || r >= PyList_GET_SIZE(texts_l))
            goto irregular;
        PyObject *ids = PyList_GET_ITEM(ids_l, r);
        PyObject *kws = PyList_GET_ITEM(kws_l, r);
        PyObject *text = PyList_GET_ITEM(texts_l, r);
        if (!PyList_CheckExact(ids) || !PyList_CheckExact(kws) || PyList_GET_SIZE(ids) != PyList_GET_SIZE(kws))
            goto irregular;
        PyObject *first = PyLong_FromSsize_t(k);
        if (first == NULL)
            goto fail;
        PyList_SET_ITEM(starts, r, first);
        blank |= text == Py_None;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(ids) && j < PyList_GET_SIZE(kws); j++, k++) {
            PyObject *iid = PyList_GET_ITEM(ids, j);
            if (!PyUnicode_CheckExact(iid))
                goto irregular;
            PyObject *g = PyDict_GetItemWithError(groups, iid); /* borrowed */
            if (g == NULL) {
                if (PyErr_Occurred())
                    goto fail;
                PyObject *spec = PyDict_GetItemWithError(reg, iid);
                if (spec == NULL) {
                    if (PyErr_Occurred())
                        goto fail;
                    goto irregular; /* unknown id: the Python path names it */
                }
                g = Py_BuildValue("[O[][][]]", spec);
                if (g == NULL)
                    goto fail;
                int err = PyDict_SetItem(groups, iid, g);
                Py_DECREF(g); /* the dict holds it */
                if (err < 0)
                    goto fail;
            }
            PyObject *flat = PyLong_FromSsize_t(k);
            if (flat == NULL)
                goto fail;
            int err = PyList_Append(PyList_GET_ITEM(g, 1), PyList_GET_ITEM(kws, j)) < 0 ||
                      PyList_Append(PyList_GET_ITEM(g, 2), text) < 0 || PyList_Append(PyList_GET_ITEM(g, 3), flat) < 0;
            Py_DECREF(flat);
            if (err)
                goto fail;
        }
    }
    PyObject *total = PyLong_FromSsize_t(k);
    if (total == NULL)
        goto fail;
    PyList_SET_ITEM(starts, n, total);
    return Py_BuildValue("(NNO)", groups, starts, blank ? Py_True : Py_False);
irregular:
    Py_DECREF(groups);
    Py_DECREF(starts);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(groups);
    Py_XDECREF(starts);
    return NULL;
}

/* rows(flat, starts) -> [flat[starts[0]:starts[1]], flat[starts[1]:starts[2]], ...] */
static PyObject *rows(PyObject *self, PyObject *args) {
    PyObject *flat, *starts;
    if (!PyArg_ParseTuple(args, "O!O!:rows", &PyList_Type, &flat, &PyList_Type, &starts))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(starts) - 1;
    if (n < 0)
        return PyList_New(0);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    Py_ssize_t a = PyLong_AsSsize_t(PyList_GET_ITEM(starts, 0));
    for (Py_ssize_t r = 0; r < n; r++) {
        Py_ssize_t b = PyLong_AsSsize_t(PyList_GET_ITEM(starts, r + 1));
        if ((a == -1 || b == -1) && PyErr_Occurred()) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *row = PyList_GetSlice(flat, a, b);
        if (row == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, r, row);
        a = b;
    }
    return out;
}

/* The kinds of ``registry.KwargSpec``, as ``registry._KIND_CODES`` numbers them. */
enum { KIND_INT = 0, KIND_STR = 1, KIND_CHOICE = 2, KIND_STR_LIST = 3 };

/* Whether ``v`` passes the exact-type test of its kind (the generated Python validator's). */
static int field_ok(PyObject *v, long kind, PyObject *lo, PyObject *choices) {
    switch (kind) {
    case KIND_INT: {
        if (!PyLong_CheckExact(v))
            return 0; /* bool and int subclasses go to the slow path */
        if (lo == Py_None)
            return 1;
        return PyObject_RichCompareBool(v, lo, Py_GE); /* int >= int: no Python code */
    }
    case KIND_STR: {
        if (!PyUnicode_CheckExact(v))
            return 0;
        Py_ssize_t n = PyUnicode_GET_LENGTH(v);
        int kind_ = PyUnicode_KIND(v);
        const void *data = PyUnicode_DATA(v);
        for (Py_ssize_t i = 0; i < n; i++) /* non-empty and not str.isspace() */
            if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind_, data, i)))
                return 1;
        return 0;
    }
    case KIND_CHOICE:
        if (!PyUnicode_CheckExact(v))
            return 0;
        return PySequence_Contains(choices, v);
    case KIND_STR_LIST: {
        if (!PyList_CheckExact(v) || PyList_GET_SIZE(v) == 0)
            return 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            PyObject *x = PyList_GET_ITEM(v, i);
            if (!PyUnicode_CheckExact(x) || PyUnicode_GET_LENGTH(x) == 0)
                return 0;
        }
        return 1;
    }
    }
    PyErr_Format(PyExc_ValueError, "unknown kwarg kind %ld", kind);
    return -1;
}

/* check_kwargs(kws, fields, slow, prepare, empty) -> [prepared kwargs]
 *
 * ``registry._make_validator``'s loop: ``fields`` is a tuple of (name, kind, lo, choices),
 * one per kwarg (all required). An exact dict with exactly those keys, each value of its
 * kind's exact type, is returned as it is (``prepare`` None) or as
 * ``prepare({name: value, ...})``; without fields, None and {} give ``empty``. Anything
 * else is ``slow(kw)``, which converts or raises. */
static PyObject *check_kwargs(PyObject *self, PyObject *args) {
    PyObject *kws, *fields, *slow, *prepare, *empty;
    if (!PyArg_ParseTuple(args, "O!O!OOO:check_kwargs", &PyList_Type, &kws, &PyTuple_Type, &fields, &slow, &prepare,
                          &empty))
        return NULL;
    Py_ssize_t nf = PyTuple_GET_SIZE(fields);
    for (Py_ssize_t f = 0; f < nf; f++) {
        PyObject *spec = PyTuple_GET_ITEM(fields, f);
        if (!PyTuple_CheckExact(spec) || PyTuple_GET_SIZE(spec) != 4 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(spec, 0)) ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(spec, 1))) {
            PyErr_SetString(PyExc_TypeError, "fields must be (name: str, kind: int, lo, choices) tuples");
            return NULL;
        }
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(kws); i++) {
        PyObject *kw = PyList_GET_ITEM(kws, i);
        Py_INCREF(kw); /* slow() and prepare() run Python code */
        PyObject *res = NULL;
        int fast = 0;
        if (nf == 0) {
            fast = kw == Py_None || (PyDict_CheckExact(kw) && PyDict_GET_SIZE(kw) == 0);
            if (fast) {
                res = empty;
                Py_INCREF(res);
            }
        } else if (PyDict_CheckExact(kw) && PyDict_GET_SIZE(kw) == nf) {
            fast = 1;
            for (Py_ssize_t f = 0; f < nf && fast; f++) {
                PyObject *spec = PyTuple_GET_ITEM(fields, f);
                PyObject *v = PyDict_GetItemWithError(kw, PyTuple_GET_ITEM(spec, 0));
                if (v == NULL) {
                    if (PyErr_Occurred())
                        goto fail;
                    fast = 0;
                    break;
                }
                int ok = field_ok(v, PyLong_AsLong(PyTuple_GET_ITEM(spec, 1)), PyTuple_GET_ITEM(spec, 2),
                                  PyTuple_GET_ITEM(spec, 3));
                if (ok < 0)
                    goto fail;
                fast = ok;
            }
            if (fast && prepare == Py_None) {
                res = kw;
                Py_INCREF(res);
            } else if (fast) {
                PyObject *made = PyDict_New();
                if (made == NULL)
                    goto fail;
                for (Py_ssize_t f = 0; f < nf; f++) {
                    PyObject *name = PyTuple_GET_ITEM(PyTuple_GET_ITEM(fields, f), 0);
                    PyObject *v = PyDict_GetItemWithError(kw, name);
                    if (v == NULL || PyDict_SetItem(made, name, v) < 0) {
                        if (!PyErr_Occurred())
                            PyErr_SetString(PyExc_RuntimeError, "kwargs changed while they were checked");
                        Py_DECREF(made);
                        goto fail;
                    }
                }
                res = PyObject_CallOneArg(prepare, made);
                Py_DECREF(made);
            }
        }
        if (!fast)
            res = PyObject_CallOneArg(slow, kw);
        if (res == NULL)
            goto fail;
        int err = PyList_Append(out, res);
        Py_DECREF(res);
        Py_DECREF(kw);
        if (err < 0)
            goto fail_out;
        continue;
    fail:
        Py_DECREF(kw);
    fail_out:
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"group", group, METH_VARARGS, "group(id_lists, kwargs_lists, row_texts, registry) -> (groups, starts, blank) or None"},
    {"rows", rows, METH_VARARGS, "rows(flat, starts) -> the flat verdicts cut into rows"},
    {"check_kwargs", check_kwargs, METH_VARARGS,
     "check_kwargs(kws, fields, slow, prepare, empty) -> [prepared kwargs] (registry._make_validator's loop)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_plan", "engine.verify_batch's bookkeeping in C", -1, methods};

PyMODINIT_FUNC PyInit__plan(void) { return PyModule_Create(&module); }
