// ncursesw (Debian: libncursesw5-dev) with the wide-character API switched on.
// SwiftPM drops pkg-config's -D flags, so the define must sit here, before the include.
#ifndef GRADFLOW_CNCURSES_SHIM_H
#define GRADFLOW_CNCURSES_SHIM_H
#define NCURSES_WIDECHAR 1
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>

// Macros and globals that Swift cannot import (or that Swift 6 rejects as shared mutable state).
static inline WINDOW *gf_stdscr(void) { return stdscr; }
static inline int gf_colors(void) { return COLORS; }
static inline int gf_color_pairs(void) { return COLOR_PAIRS; }
static inline int gf_lines(void) { return LINES; }
static inline int gf_cols(void) { return COLS; }
static inline attr_t gf_color_pair(int n) { return COLOR_PAIR(n); }
static inline attr_t gf_a_bold(void) { return A_BOLD; }
static inline attr_t gf_a_dim(void) { return A_DIM; }
static inline attr_t gf_a_reverse(void) { return A_REVERSE; }
static inline attr_t gf_a_underline(void) { return A_UNDERLINE; }
static inline attr_t gf_a_normal(void) { return A_NORMAL; }
static inline int gf_getmaxy(WINDOW *w) { return getmaxy(w); }
static inline int gf_getmaxx(WINDOW *w) { return getmaxx(w); }
static inline int gf_key_resize(void) { return KEY_RESIZE; }
static inline int gf_key_code_yes(void) { return KEY_CODE_YES; }
static inline int gf_key_up(void) { return KEY_UP; }
static inline int gf_key_down(void) { return KEY_DOWN; }
static inline int gf_key_left(void) { return KEY_LEFT; }
static inline int gf_key_right(void) { return KEY_RIGHT; }
static inline int gf_key_sleft(void) { return KEY_SLEFT; }
static inline int gf_key_sright(void) { return KEY_SRIGHT; }
static inline int gf_key_sr(void) { return KEY_SR; }
static inline int gf_key_sf(void) { return KEY_SF; }
static inline int gf_key_btab(void) { return KEY_BTAB; }
static inline int gf_key_enter(void) { return KEY_ENTER; }
static inline int gf_key_backspace(void) { return KEY_BACKSPACE; }
static inline int gf_key_home(void) { return KEY_HOME; }
static inline int gf_key_end(void) { return KEY_END; }
static inline int gf_key_ppage(void) { return KEY_PPAGE; }
static inline int gf_key_npage(void) { return KEY_NPAGE; }
static inline int gf_key_f(int n) { return KEY_F(n); }

// One wide character with attributes and an extended colour pair (pairs above 32767 need the
// `opts` pointer of setcchar, which Swift cannot build conveniently).
static inline int gf_put_cell(WINDOW *w, int y, int x, int ch, attr_t attrs, int pair) {
    wchar_t s[2] = { (wchar_t)ch, 0 };
    cchar_t cc;
    if (setcchar(&cc, s, attrs, 0, &pair) != OK) return ERR;
    return mvwadd_wch(w, y, x, &cc);
}

// One key from wget_wch: the character or key code, -1 when none arrived before the timeout.
static inline int gf_read_key(WINDOW *w, int *is_key_code) {
    wint_t ch = 0;
    int r = wget_wch(w, &ch);
    if (r == ERR) { *is_key_code = 0; return -1; }
    *is_key_code = (r == KEY_CODE_YES);
    return (int)ch;
}
#endif
