/* core._fastbook: optional C accelerator for OrderBook._apply_levels (the engine's hot path).
 *
 * levels_to_units(levels, price_decimals, qty_decimals) -> list[tuple[int, int]]
 *     Exact decimal-string -> integer-unit conversion with core.numeric.parse_units semantics:
 *     ASCII digits, optionally "." and more ASCII digits ("1." is accepted, ".5" is not);
 *     fractional digits beyond `decimals` must all be zeros. 64-bit arithmetic with overflow
 *     checks; a value beyond 64 bits is built as a Python int (still exact). Bad strings raise
 *     core.numeric.DecimalFormatError (a ValueError), non-str TypeError, a level that is not a
 *     pair ValueError. Nothing partial is returned.
 *
 * apply_side(side, pairs, is_bid, best) -> (top | None, lost)
 *     The per-side loop of OrderBook._apply_levels: qty 0 pops the price (if present), else
 *     sets it; top is the best non-zero price of the message still present afterwards; lost
 *     says whether a pop removed `best`.
 *
 * grid_tick(pairs, tick) -> int
 *     gcd-coarsens `tick` until every price of `pairs` is a multiple of it (tick > 0).
 *
 * apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick,
 *              best_bid, best_ask) -> (tick, bid_top, bid_lost, ask_top, ask_lost) | None
 *     What OrderBook._apply_levels calls: the three steps above fused for both sides without
 *     intermediate tuples (parse all, then tick, then apply). None (nothing touched) when a value
 *     or the tick needs more than 64 bits; the book then uses the three functions above.
 *
 * The pure-Python path in core/book.py is the reference; tests/core/test_fastbook.py checks
 * parity.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static PyObject *DecimalError = NULL; /* core.numeric.DecimalFormatError, or ValueError */
static PyObject *math_gcd = NULL;

static int bad_decimal(PyObject *s, const char *why)
{
    PyErr_Format(DecimalError, "%s: %R", why, s);
    return -1;
}

/* Slow exact path for values beyond 64 bits: int(whole + frac[:used] + "0" * pad). */
static PyObject *big_units(const char *c, Py_ssize_t nwhole, Py_ssize_t fracstart, Py_ssize_t used,
                           Py_ssize_t pad)
{
    Py_ssize_t len = nwhole + used + pad;
    char *buf = (char *)PyMem_Malloc((size_t)len + 1);
    if (buf == NULL)
        return PyErr_NoMemory();
    memcpy(buf, c, (size_t)nwhole);
    memcpy(buf + nwhole, c + fracstart, (size_t)used);
    memset(buf + nwhole + used, '0', (size_t)pad);
    buf[len] = '\0';
    PyObject *r = PyLong_FromString(buf, NULL, 10);
    PyMem_Free(buf);
    return r;
}

/* One decimal string -> 64-bit units: 0 ok (*out set), 1 beyond 64 bits (nothing set, no
 * exception; *big gets the exact int if big != NULL), -1 error with an exception set. */
static int parse_ll(PyObject *s, Py_ssize_t decimals, long long *out, PyObject **big)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "not a decimal string: %R", s);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0)
        return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0) {
        bad_decimal(s, "not a decimal string");
        return -1;
    }
    if (!PyUnicode_IS_ASCII(s)) {
        bad_decimal(s, "not a plain decimal");
        return -1;
    }
    const char *c = (const char *)PyUnicode_1BYTE_DATA(s);
    Py_ssize_t i = 0;
    long long v = 0;
    int overflow = 0;
    while (i < n && c[i] >= '0' && c[i] <= '9') {
        if (!overflow && (__builtin_mul_overflow(v, 10LL, &v) || __builtin_add_overflow(v, (long long)(c[i] - '0'), &v)))
            overflow = 1;
        i++;
    }
    Py_ssize_t nwhole = i;
    if (nwhole == 0) {
        bad_decimal(s, "not a plain decimal");
        return -1;
    }
    Py_ssize_t fracstart = n, nfrac = 0;
    if (i < n) {
        if (c[i] != '.') {
            bad_decimal(s, "not a plain decimal");
            return -1;
        }
        fracstart = ++i;
        while (i < n && c[i] >= '0' && c[i] <= '9')
            i++;
        if (i < n) {
            bad_decimal(s, "not a plain decimal");
            return -1;
        }
        nfrac = n - fracstart;
    }
    Py_ssize_t used = nfrac;
    if (nfrac > decimals) {
        for (Py_ssize_t k = fracstart + decimals; k < n; k++) {
            if (c[k] != '0') {
                PyErr_Format(DecimalError, "%R has more than %zd decimals", s, decimals);
                return -1;
            }
        }
        used = decimals;
    }
    for (Py_ssize_t k = fracstart; k < fracstart + used; k++) {
        if (!overflow && (__builtin_mul_overflow(v, 10LL, &v) || __builtin_add_overflow(v, (long long)(c[k] - '0'), &v)))
            overflow = 1;
    }
    Py_ssize_t pad = decimals - used;
    if (!overflow && v != 0) {
        for (Py_ssize_t k = 0; k < pad; k++) {
            if (__builtin_mul_overflow(v, 10LL, &v)) {
                overflow = 1;
                break;
            }
        }
    }
    if (overflow) {
        if (big != NULL) {
            *big = big_units(c, nwhole, fracstart, used, pad);
            if (*big == NULL)
                return -1;
        }
        return 1;
    }
    *out = v;
    return 0;
}

/* One decimal string -> new reference to an int, or NULL with an exception set. */
static PyObject *parse_units(PyObject *s, Py_ssize_t decimals)
{
    long long v = 0;
    PyObject *big = NULL;
    int r = parse_ll(s, decimals, &v, &big);
    if (r < 0)
        return NULL;
    if (r > 0)
        return big;
    return PyLong_FromLongLong(v);
}

static int get_decimals(PyObject *o, Py_ssize_t *out, const char *name)
{
    Py_ssize_t d = PyNumber_AsSsize_t(o, PyExc_OverflowError);
    if (d == -1 && PyErr_Occurred())
        return -1;
    if (d < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be non-negative", name);
        return -1;
    }
    *out = d;
    return 0;
}

static PyObject *levels_to_units(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "levels_to_units(levels, price_decimals, qty_decimals)");
        return NULL;
    }
    Py_ssize_t pd, qd;
    if (get_decimals(args[1], &pd, "price_decimals") < 0 || get_decimals(args[2], &qd, "qty_decimals") < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(args[0], "levels must be iterable");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *level = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *lv = PySequence_Fast(level, "a level must be a [price, qty] pair");
        if (lv == NULL) {
            /* Python's `for p, q in levels` raises TypeError for a non-iterable level too. */
            goto fail;
        }
        if (PySequence_Fast_GET_SIZE(lv) != 2) {
            PyErr_Format(PyExc_ValueError, "a level must be a [price, qty] pair, got %zd items",
                         PySequence_Fast_GET_SIZE(lv));
            Py_DECREF(lv);
            goto fail;
        }
        PyObject *p = parse_units(PySequence_Fast_GET_ITEM(lv, 0), pd);
        if (p == NULL) {
            Py_DECREF(lv);
            goto fail;
        }
        PyObject *q = parse_units(PySequence_Fast_GET_ITEM(lv, 1), qd);
        Py_DECREF(lv);
        if (q == NULL) {
            Py_DECREF(p);
            goto fail;
        }
        PyObject *t = PyTuple_New(2);
        if (t == NULL) {
            Py_DECREF(p);
            Py_DECREF(q);
            goto fail;
        }
        PyTuple_SET_ITEM(t, 0, p);
        PyTuple_SET_ITEM(t, 1, q);
        PyList_SET_ITEM(out, i, t);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out); /* unset slots are NULL; list dealloc handles them */
    return NULL;
}

/* (p, q) from a pair produced by levels_to_units (borrowed references). */
static int unpack_pair(PyObject *pair, PyObject **p, PyObject **q)
{
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
        *p = PyTuple_GET_ITEM(pair, 0);
        *q = PyTuple_GET_ITEM(pair, 1);
        return 0;
    }
    if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
        *p = PyList_GET_ITEM(pair, 0);
        *q = PyList_GET_ITEM(pair, 1);
        return 0;
    }
    PyErr_SetString(PyExc_TypeError, "pairs must hold (price, qty) 2-tuples");
    return -1;
}

/* Remove key if present; 1 if removed, 0 if absent, -1 on error. */
static int dict_discard(PyObject *d, PyObject *key)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_Pop(d, key, NULL);
#else
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (v == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (PyDict_DelItem(d, key) < 0)
        return -1;
    return 1;
#endif
}

static PyObject *apply_side(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "apply_side(side, pairs, is_bid, best)");
        return NULL;
    }
    PyObject *side = args[0];
    PyObject *pairs = args[1];
    PyObject *best = args[3];
    if (!PyDict_Check(side)) {
        PyErr_SetString(PyExc_TypeError, "side must be a dict");
        return NULL;
    }
    if (!PyList_CheckExact(pairs)) {
        PyErr_SetString(PyExc_TypeError, "pairs must be a list");
        return NULL;
    }
    int is_bid = PyObject_IsTrue(args[2]);
    if (is_bid < 0)
        return NULL;
    int better = is_bid ? Py_GT : Py_LT;
    PyObject *top = NULL; /* borrowed from pairs (kept alive by the list) */
    int lost = 0;
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p, *q;
        if (unpack_pair(PyList_GET_ITEM(pairs, i), &p, &q) < 0)
            return NULL;
        int nz = PyObject_IsTrue(q);
        if (nz < 0)
            return NULL;
        if (nz) {
            if (PyDict_SetItem(side, p, q) < 0)
                return NULL;
            if (top == NULL) {
                top = p;
            } else {
                int b = PyObject_RichCompareBool(p, top, better);
                if (b < 0)
                    return NULL;
                if (b)
                    top = p;
            }
        } else {
            int removed = dict_discard(side, p);
            if (removed < 0)
                return NULL;
            if (removed && !lost) {
                int eq = PyObject_RichCompareBool(p, best, Py_EQ);
                if (eq < 0)
                    return NULL;
                if (eq)
                    lost = 1;
            }
        }
    }
    if (top != NULL) {
        int present = PyDict_Contains(side, top);
        if (present < 0)
            return NULL;
        if (!present) {
            /* A price repeated in the message ended deleted: best of those still present. */
            top = NULL;
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *p, *q;
                if (unpack_pair(PyList_GET_ITEM(pairs, i), &p, &q) < 0)
                    return NULL;
                int in = PyDict_Contains(side, p);
                if (in < 0)
                    return NULL;
                if (!in)
                    continue;
                if (top == NULL) {
                    top = p;
                } else {
                    int b = PyObject_RichCompareBool(p, top, better);
                    if (b < 0)
                        return NULL;
                    if (b)
                        top = p;
                }
            }
        }
    }
    return Py_BuildValue("(OO)", top != NULL ? top : Py_None, lost ? Py_True : Py_False);
}

static PyObject *grid_tick(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "grid_tick(pairs, tick)");
        return NULL;
    }
    PyObject *pairs = args[0];
    if (!PyList_CheckExact(pairs)) {
        PyErr_SetString(PyExc_TypeError, "pairs must be a list");
        return NULL;
    }
    PyObject *tick = args[1];
    Py_INCREF(tick);
    Py_ssize_t n = PyList_GET_SIZE(pairs);
    int ovf = 0;
    long long t = PyLong_Check(tick) ? PyLong_AsLongLongAndOverflow(tick, &ovf) : 0;
    if (t == -1 && PyErr_Occurred())
        goto error;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p, *q;
        if (unpack_pair(PyList_GET_ITEM(pairs, i), &p, &q) < 0)
            goto error;
        if (t > 0 && !ovf && PyLong_CheckExact(p)) {
            int povf = 0;
            long long pv = PyLong_AsLongLongAndOverflow(p, &povf);
            if (pv == -1 && PyErr_Occurred())
                goto error;
            if (!povf && pv >= 0) {
                if (pv % t == 0)
                    continue;
                long long a = t, b = pv;
                while (b) {
                    long long r = a % b;
                    a = b;
                    b = r;
                }
                t = a;
                Py_SETREF(tick, PyLong_FromLongLong(t));
                if (tick == NULL)
                    return NULL;
                continue;
            }
        }
        /* Generic path: if p % tick: tick = math.gcd(tick, p) */
        PyObject *r = PyNumber_Remainder(p, tick);
        if (r == NULL)
            goto error;
        int nz = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (nz < 0)
            goto error;
        if (nz) {
            PyObject *g = PyObject_CallFunctionObjArgs(math_gcd, tick, p, NULL);
            if (g == NULL)
                goto error;
            Py_SETREF(tick, g);
            ovf = 0;
            t = PyLong_Check(tick) ? PyLong_AsLongLongAndOverflow(tick, &ovf) : 0;
            if (t == -1 && PyErr_Occurred())
                goto error;
        }
    }
    return tick;
error:
    Py_XDECREF(tick);
    return NULL;
}

/* ------------------------------------------------------------------ fused message apply */

typedef struct {
    long long p, q;
} lvl_t;

#define STACK_LEVELS 128

/* Parse one side's [price, qty] levels into out[]: 0 ok, 1 beyond 64 bits, -1 error. */
static int parse_side(PyObject *seq, Py_ssize_t pd, Py_ssize_t qd, lvl_t *out)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *level = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *a, *b;
        if (PyList_CheckExact(level) && PyList_GET_SIZE(level) == 2) {
            a = PyList_GET_ITEM(level, 0);
            b = PyList_GET_ITEM(level, 1);
            int r = parse_ll(a, pd, &out[i].p, NULL);
            if (r == 0)
                r = parse_ll(b, qd, &out[i].q, NULL);
            if (r != 0)
                return r;
            continue;
        }
        PyObject *lv = PySequence_Fast(level, "a level must be a [price, qty] pair");
        if (lv == NULL)
            return -1;
        if (PySequence_Fast_GET_SIZE(lv) != 2) {
            PyErr_Format(PyExc_ValueError, "a level must be a [price, qty] pair, got %zd items",
                         PySequence_Fast_GET_SIZE(lv));
            Py_DECREF(lv);
            return -1;
        }
        int r = parse_ll(PySequence_Fast_GET_ITEM(lv, 0), pd, &out[i].p, NULL);
        if (r == 0)
            r = parse_ll(PySequence_Fast_GET_ITEM(lv, 1), qd, &out[i].q, NULL);
        Py_DECREF(lv);
        if (r != 0)
            return r;
    }
    return 0;
}

static inline long long gcd_ll(long long a, long long b)
{
    while (b) {
        long long r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* apply_side on parsed levels. *top_out: new reference or NULL (None). */
static int apply_parsed(PyObject *side, const lvl_t *lv, Py_ssize_t n, int is_bid, PyObject *best,
                        PyObject **top_out, int *lost_out)
{
    long long bestv = 0;
    int best_kind = 0; /* 0: never equal (None or beyond 64 bits), 1: compare bestv, 2: generic */
    if (best != Py_None) {
        if (PyLong_Check(best)) {
            int ovf = 0;
            bestv = PyLong_AsLongLongAndOverflow(best, &ovf);
            if (bestv == -1 && PyErr_Occurred())
                return -1;
            best_kind = ovf ? 0 : 1;
        } else {
            best_kind = 2;
        }
    }
    PyObject *topkey = NULL;
    long long topv = 0;
    int lost = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        long long p = lv[i].p, q = lv[i].q;
        PyObject *key = PyLong_FromLongLong(p);
        if (key == NULL)
            goto error;
        if (q) {
            PyObject *val = PyLong_FromLongLong(q);
            if (val == NULL || PyDict_SetItem(side, key, val) < 0) {
                Py_XDECREF(val);
                Py_DECREF(key);
                goto error;
            }
            Py_DECREF(val);
            if (topkey == NULL || (is_bid ? p > topv : p < topv)) {
                Py_XSETREF(topkey, key);
                topv = p;
            } else {
                Py_DECREF(key);
            }
        } else {
            int removed = dict_discard(side, key);
            if (removed < 0) {
                Py_DECREF(key);
                goto error;
            }
            if (removed && !lost) {
                if (best_kind == 1)
                    lost = p == bestv;
                else if (best_kind == 2) {
                    int eq = PyObject_RichCompareBool(key, best, Py_EQ);
                    if (eq < 0) {
                        Py_DECREF(key);
                        goto error;
                    }
                    lost = eq;
                }
            }
            Py_DECREF(key);
        }
    }
    if (topkey != NULL) {
        int present = PyDict_Contains(side, topkey);
        if (present < 0)
            goto error;
        if (!present) {
            /* A price repeated in the message ended deleted: best of those still present. */
            Py_CLEAR(topkey);
            for (Py_ssize_t i = 0; i < n; i++) {
                long long p = lv[i].p;
                if (topkey != NULL && !(is_bid ? p > topv : p < topv))
                    continue;
                PyObject *key = PyLong_FromLongLong(p);
                if (key == NULL)
                    goto error;
                int in = PyDict_Contains(side, key);
                if (in < 0) {
                    Py_DECREF(key);
                    goto error;
                }
                if (in) {
                    Py_XSETREF(topkey, key);
                    topv = p;
                } else {
                    Py_DECREF(key);
                }
            }
        }
    }
    *top_out = topkey;
    *lost_out = lost;
    return 0;
error:
    Py_XDECREF(topkey);
    return -1;
}

/* apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick,
 *              best_bid, best_ask) -> (tick, bid_top, bid_lost, ask_top, ask_lost) | None
 *
 * The whole of _apply_levels but the best-price walk: both sides parsed first (a bad string
 * raises before either dict is touched), the tick coarsened over bids then asks, then each side
 * applied like apply_side. Returns None without touching anything when a value or the tick does
 * not fit 64 bits: the caller then takes the general path. */
static PyObject *apply_levels(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick, best_bid, best_ask)");
        return NULL;
    }
    PyObject *bids = args[0], *asks = args[1], *tick = args[6];
    if (!PyDict_Check(bids) || !PyDict_Check(asks)) {
        PyErr_SetString(PyExc_TypeError, "book sides must be dicts");
        return NULL;
    }
    Py_ssize_t pd, qd;
    if (get_decimals(args[4], &pd, "price_decimals") < 0 || get_decimals(args[5], &qd, "qty_decimals") < 0)
        return NULL;
    PyObject *bseq = PySequence_Fast(args[2], "levels must be iterable");
    if (bseq == NULL)
        return NULL;
    PyObject *aseq = PySequence_Fast(args[3], "levels must be iterable");
    if (aseq == NULL) {
        Py_DECREF(bseq);
        return NULL;
    }
    PyObject *result = NULL, *btop = NULL, *atop = NULL;
    Py_ssize_t nb = PySequence_Fast_GET_SIZE(bseq), na = PySequence_Fast_GET_SIZE(aseq);
    lvl_t stackbuf[STACK_LEVELS];
    lvl_t *buf = stackbuf;
    if (nb + na > STACK_LEVELS) {
        buf = (lvl_t *)PyMem_Malloc(sizeof(lvl_t) * (size_t)(nb + na));
        if (buf == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    int r = parse_side(bseq, pd, qd, buf);
    if (r == 0)
        r = parse_side(aseq, pd, qd, buf + nb);
    if (r < 0)
        goto done;
    if (r > 0) { /* beyond 64 bits */
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* tick: `if tick and tick != 1:` coarsen it over every price (bids first, then asks). */
    int truthy = PyObject_IsTrue(tick);
    if (truthy < 0)
        goto done;
    PyObject *new_tick;
    if (truthy) {
        int ovf = 0;
        long long t = PyLong_CheckExact(tick) ? PyLong_AsLongLongAndOverflow(tick, &ovf) : -1;
        if (t == -1 && PyErr_Occurred())
            goto done;
        if (ovf || t <= 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        long long t0 = t;
        if (t != 1) {
            for (Py_ssize_t i = 0; i < nb + na; i++) {
                long long p = buf[i].p;
                if (p < 0) { /* cannot happen (parse gives non-negative units) */
                    result = Py_NewRef(Py_None);
                    goto done;
                }
                if (p % t)
                    t = gcd_ll(t, p);
            }
        }
        new_tick = t == t0 ? Py_NewRef(tick) : PyLong_FromLongLong(t);
        if (new_tick == NULL)
            goto done;
    } else {
        new_tick = Py_NewRef(tick);
    }
    int blost = 0, alost = 0;
    if (apply_parsed(bids, buf, nb, 1, args[7], &btop, &blost) < 0 ||
        apply_parsed(asks, buf + nb, na, 0, args[8], &atop, &alost) < 0) {
        Py_DECREF(new_tick);
        goto done;
    }
    result = PyTuple_New(5);
    if (result == NULL) {
        Py_DECREF(new_tick);
        goto done;
    }
    PyTuple_SET_ITEM(result, 0, new_tick);
    PyTuple_SET_ITEM(result, 1, btop != NULL ? btop : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(result, 2, Py_NewRef(blost ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 3, atop != NULL ? atop : Py_NewRef(Py_None));
    PyTuple_SET_ITEM(result, 4, Py_NewRef(alost ? Py_True : Py_False));
    btop = atop = NULL; /* stolen */
done:
    Py_XDECREF(btop);
    Py_XDECREF(atop);
    if (buf != stackbuf)
        PyMem_Free(buf);
    Py_DECREF(bseq);
    Py_DECREF(aseq);
    return result;
}

static PyMethodDef methods[] = {
    {"levels_to_units", (PyCFunction)(void (*)(void))levels_to_units, METH_FASTCALL,
     "levels_to_units(levels, price_decimals, qty_decimals) -> list[tuple[int, int]]"},
    {"apply_side", (PyCFunction)(void (*)(void))apply_side, METH_FASTCALL,
     "apply_side(side, pairs, is_bid, best) -> (top or None, lost)"},
    {"grid_tick", (PyCFunction)(void (*)(void))grid_tick, METH_FASTCALL,
     "grid_tick(pairs, tick) -> tick coarsened so every price is on the grid"},
    {"apply_levels", (PyCFunction)(void (*)(void))apply_levels, METH_FASTCALL,
     "apply_levels(bids, asks, bid_levels, ask_levels, price_decimals, qty_decimals, tick, best_bid, best_ask)"
     " -> (tick, bid_top, bid_lost, ask_top, ask_lost), or None when a value needs more than 64 bits"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "core._fastbook", "C accelerator for OrderBook._apply_levels.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastbook(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    PyObject *math = PyImport_ImportModule("math");
    if (math == NULL)
        goto fail;
    math_gcd = PyObject_GetAttrString(math, "gcd");
    Py_DECREF(math);
    if (math_gcd == NULL)
        goto fail;
    PyObject *numeric = PyImport_ImportModule("core.numeric");
    if (numeric != NULL) {
        DecimalError = PyObject_GetAttrString(numeric, "DecimalFormatError");
        Py_DECREF(numeric);
    }
    if (DecimalError == NULL) {
        PyErr_Clear();
        DecimalError = Py_NewRef(PyExc_ValueError);
    }
    if (PyModule_AddObjectRef(m, "DecimalFormatError", DecimalError) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
