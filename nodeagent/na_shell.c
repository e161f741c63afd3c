/* na_shell.c - see na_shell.h. */
#include "na_shell.h"

#include <errno.h>
#include <string.h>

#include "cf_limits.h"

/* Kinds of nested context. CMD-like frames count operators; the others only
 * look for the substitutions that re-enter a CMD-like frame. */
enum frame_type {
	F_TOP = 0,  /* the script itself: never closed */
	F_SUBST,    /* $( ... ), <( ... ), >( ... ): closed by ')' at depth 0 */
	F_BACKTICK, /* ` ... ` */
	F_DQUOTE,   /* " ... " */
	F_BRACE,    /* ${ ... } */
	F_HEREDOC,  /* an unquoted here-document body: like F_DQUOTE, no close */
};

#define NO_POS ((size_t)-1)

struct frame {
	enum frame_type type;
	unsigned depth;    /* '(' or '{' nesting inside this frame */
	bool have_word;    /* a word since the last separator */
	bool word_start;   /* the next byte starts a word (for '#') */
	size_t pending_nl; /* unreported newline after a command, or NO_POS */
};

struct heredoc {
	char delim[CF_AGENT_MAX_HEREDOC_DELIM];
	size_t delim_len;
	bool quoted;     /* body is literal */
	bool strip_tabs; /* <<- */
};

/* Here-document bodies are scanned by a nested call; this bounds that
 * recursion (each level has its own frame stack). */
#define MAX_HEREDOC_NESTING 4u

struct scanner {
	const char *s;
	size_t end;
	na_shell_result *r;
	struct frame stack[CF_AGENT_MAX_SHELL_DEPTH];
	unsigned top; /* index of the current frame */
	struct heredoc hd[CF_AGENT_MAX_HEREDOCS];
	unsigned n_hd;
	unsigned nesting; /* here-document recursion level */
};

static void report(na_shell_result *r, na_shell_op op, size_t at)
{
	if (!(r->ops & NA_SH_BIT(op))) {
		r->ops |= NA_SH_BIT(op);
		r->first[op] = at;
	} else if (at < r->first[op]) {
		r->first[op] = at;
	}
}

static void problem(na_shell_result *r, unsigned bit, size_t at)
{
	if (!r->problems || at < r->problem_offset)
		r->problem_offset = at;
	r->problems |= bit;
}

static bool cmd_like(enum frame_type t)
{
	return t == F_TOP || t == F_SUBST || t == F_BACKTICK;
}

static void push(struct scanner *sc, enum frame_type t, size_t at)
{
	if (sc->top + 1 >= CF_AGENT_MAX_SHELL_DEPTH) {
		/* Stay in the current frame: the problem is a finding, so the
		 * decision no longer depends on reading the rest exactly. */
		problem(sc->r, NA_SH_P_TOO_DEEP, at);
		return;
	}
	sc->top++;
	struct frame *f = &sc->stack[sc->top];
	f->type = t;
	f->depth = 0;
	f->have_word = false;
	f->word_start = true;
	f->pending_nl = NO_POS;
}

static void pop(struct scanner *sc)
{
	if (sc->top > 0)
		sc->top--;
}

static void word(struct scanner *sc)
{
	struct frame *f = &sc->stack[sc->top];
	if (f->pending_nl != NO_POS) {
		report(sc->r, NA_SH_NEWLINE, f->pending_nl);
		f->pending_nl = NO_POS;
	}
	f->have_word = true;
	f->word_start = false;
}

static void separator(struct scanner *sc)
{
	struct frame *f = &sc->stack[sc->top];
	f->have_word = false;
	f->word_start = true;
	f->pending_nl = NO_POS;
}

static void scan_range(const char *s, size_t begin, size_t end, enum frame_type start,
                       unsigned nesting, na_shell_result *r);

/* Reads the delimiter word after `<<`/`<<-` at s[i]; returns the index
 * after it. Quoting anywhere in the word makes the body literal. */
static size_t read_heredoc_word(struct scanner *sc, size_t i, bool strip_tabs, size_t at)
{
	const char *s = sc->s;
	struct heredoc h;
	h.delim_len = 0;
	h.quoted = false;
	h.strip_tabs = strip_tabs;
	bool overflow = false;
	while (i < sc->end && (s[i] == ' ' || s[i] == '\t'))
		i++;
	while (i < sc->end) {
		char c = s[i];
		char q = 0;
		if (c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' ||
		    c == '<' || c == '>' || c == '(' || c == ')')
			break;
		if (c == '\\' && i + 1 < sc->end) {
			h.quoted = true;
			c = s[i + 1];
			i += 2;
		} else if (c == '\'' || c == '"') {
			h.quoted = true;
			q = c;
			i++;
		} else {
			i++;
		}
		if (q) {
			while (i < sc->end && s[i] != q) {
				if (h.delim_len + 1 < sizeof h.delim)
					h.delim[h.delim_len++] = s[i];
				else
					overflow = true;
				i++;
			}
			if (i >= sc->end) {
				problem(sc->r,
				        q == '\'' ? NA_SH_P_UNTERMINATED_SQUOTE
				                  : NA_SH_P_UNTERMINATED_DQUOTE,
				        at);
				return i;
			}
			i++; /* closing quote */
			continue;
		}
		if (h.delim_len + 1 < sizeof h.delim)
			h.delim[h.delim_len++] = c;
		else
			overflow = true;
	}
	if (h.delim_len == 0 || overflow) {
		problem(sc->r, NA_SH_P_UNTERMINATED_HEREDOC, at);
		return i;
	}
	h.delim[h.delim_len] = '\0';
	if (sc->n_hd >= CF_AGENT_MAX_HEREDOCS) {
		problem(sc->r, NA_SH_P_TOO_MANY_HEREDOCS, at);
		return i;
	}
	sc->hd[sc->n_hd++] = h;
	word(sc);
	return i;
}

/* At an unquoted newline (s[nl]) with here-documents pending: skips their
 * bodies, scanning unquoted ones for substitutions. Returns the index where
 * scanning resumes. */
static size_t read_heredoc_bodies(struct scanner *sc, size_t nl)
{
	const char *s = sc->s;
	size_t p = nl + 1;
	for (unsigned k = 0; k < sc->n_hd; k++) {
		const struct heredoc *h = &sc->hd[k];
		size_t body = p;
		bool found = false;
		while (p < sc->end) {
			const char *eol = memchr(s + p, '\n', sc->end - p);
			size_t line_end = eol ? (size_t)(eol - s) : sc->end;
			size_t ls = p;
			if (h->strip_tabs)
				while (ls < line_end && s[ls] == '\t')
					ls++;
			if (line_end - ls == h->delim_len &&
			    memcmp(s + ls, h->delim, h->delim_len) == 0) {
				if (!h->quoted && p > body) {
					if (sc->nesting + 1 >= MAX_HEREDOC_NESTING)
						problem(sc->r, NA_SH_P_TOO_DEEP, body);
					else
						scan_range(s, body, p, F_HEREDOC, sc->nesting + 1,
						           sc->r);
				}
				p = eol ? line_end + 1 : sc->end;
				found = true;
				break;
			}
			p = eol ? line_end + 1 : sc->end;
		}
		if (!found) {
			problem(sc->r, NA_SH_P_UNTERMINATED_HEREDOC, body);
			if (!h->quoted && sc->nesting + 1 < MAX_HEREDOC_NESTING)
				scan_range(s, body, sc->end, F_HEREDOC, sc->nesting + 1, sc->r);
			p = sc->end;
			break;
		}
	}
	sc->n_hd = 0;
	return p;
}

/* $'...': backslash escapes anything, including a quote. */
static size_t skip_ansi_quote(struct scanner *sc, size_t i, size_t at)
{
	while (i < sc->end) {
		if (sc->s[i] == '\\') {
			i += 2;
			continue;
		}
		if (sc->s[i] == '\'')
			return i + 1;
		i++;
	}
	problem(sc->r, NA_SH_P_UNTERMINATED_SQUOTE, at);
	return sc->end;
}

/* Handles '$' in any frame: $( $(( ${ $'; returns the new index or 0 when
 * the '$' is an ordinary byte. */
static size_t dollar(struct scanner *sc, size_t i, bool ansi_ok)
{
	const char *s = sc->s;
	if (i + 1 >= sc->end)
		return 0;
	if (s[i + 1] == '(') {
		report(sc->r, NA_SH_SUBST, i);
		word(sc);
		push(sc, F_SUBST, i);
		return i + 2;
	}
	if (s[i + 1] == '{') {
		word(sc);
		push(sc, F_BRACE, i);
		return i + 2;
	}
	if (ansi_ok && s[i + 1] == '\'') {
		word(sc);
		return skip_ansi_quote(sc, i + 2, i);
	}
	return 0;
}

/* One byte (or operator) in a CMD-like frame. Returns the next index. */
static size_t step_cmd(struct scanner *sc, size_t i)
{
	const char *s = sc->s;
	struct frame *f = &sc->stack[sc->top];
	char c = s[i];
	char n = i + 1 < sc->end ? s[i + 1] : '\0';
	bool has_n = i + 1 < sc->end;
	size_t j;

	switch (c) {
	case '\\':
		if (!has_n) {
			problem(sc->r, NA_SH_P_TRAILING_BACKSLASH, i);
			return i + 1;
		}
		if (n == '\n')
			return i + 2; /* line continuation */
		if (n == '\0')
			problem(sc->r, NA_SH_P_NUL, i + 1);
		word(sc);
		return i + 2;
	case '\'': {
		word(sc);
		const char *q = memchr(s + i + 1, '\'', sc->end - i - 1);
		if (!q) {
			problem(sc->r, NA_SH_P_UNTERMINATED_SQUOTE, i);
			return sc->end;
		}
		return (size_t)(q - s) + 1;
	}
	case '"':
		word(sc);
		push(sc, F_DQUOTE, i);
		return i + 1;
	case '`':
		if (f->type == F_BACKTICK) {
			pop(sc);
			return i + 1;
		}
		report(sc->r, NA_SH_BACKTICK, i);
		word(sc);
		push(sc, F_BACKTICK, i);
		return i + 1;
	case '$':
		j = dollar(sc, i, true);
		if (j)
			return j;
		word(sc);
		return i + 1;
	case '#':
		if (f->word_start) {
			const char *e = memchr(s + i, '\n', sc->end - i);
			return e ? (size_t)(e - s) : sc->end;
		}
		word(sc);
		return i + 1;
	case '\n':
		j = i + 1;
		if (sc->n_hd)
			j = read_heredoc_bodies(sc, i);
		f = &sc->stack[sc->top];
		if (f->have_word && f->pending_nl == NO_POS)
			f->pending_nl = i;
		f->have_word = false;
		f->word_start = true;
		return j;
	case ' ':
	case '\t':
		/* Only space and tab separate words: a shell keeps '\r' in the
		 * word, so `a\r#;b` has no comment and `;` is live. */
		f->word_start = true;
		return i + 1;
	case ';':
		report(sc->r, NA_SH_SEMI, i);
		j = i + 1;
		if (j < sc->end && s[j] == ';')
			j++;
		if (j < sc->end && s[j] == '&')
			j++;
		separator(sc);
		return j;
	case '&':
		if (n == '&') {
			report(sc->r, NA_SH_AND, i);
			separator(sc);
			return i + 2;
		}
		if (n == '>') { /* &> and &>> redirect both streams */
			report(sc->r, NA_SH_OUT, i);
			j = i + 2;
			if (j < sc->end && s[j] == '>')
				j++;
			f->word_start = true;
			return j;
		}
		report(sc->r, NA_SH_BG, i);
		separator(sc);
		return i + 1;
	case '|':
		if (n == '|') {
			report(sc->r, NA_SH_OR, i);
			separator(sc);
			return i + 2;
		}
		report(sc->r, NA_SH_PIPE, i);
		separator(sc);
		return n == '&' ? i + 2 : i + 1;
	case '>':
		report(sc->r, NA_SH_OUT, i);
		f->word_start = true;
		if (n == '(') {
			push(sc, F_SUBST, i);
			return i + 2;
		}
		if (n == '>' || n == '|' || n == '&')
			return i + 2;
		return i + 1;
	case '<':
		report(sc->r, NA_SH_IN, i);
		f->word_start = true;
		if (n == '(') {
			push(sc, F_SUBST, i);
			return i + 2;
		}
		if (n == '<') {
			if (i + 2 < sc->end && s[i + 2] == '<')
				return i + 3; /* here-string */
			bool strip = i + 2 < sc->end && s[i + 2] == '-';
			return read_heredoc_word(sc, i + (strip ? 3 : 2), strip, i);
		}
		if (n == '&' || n == '>')
			return i + 2;
		return i + 1;
	case '(':
		f->depth++;
		separator(sc);
		return i + 1;
	case ')':
		if (f->depth > 0) {
			f->depth--;
			f->word_start = true;
			return i + 1;
		}
		if (f->type == F_SUBST) {
			pop(sc);
			return i + 1;
		}
		/* A stray ')' (e.g. a case pattern at the top level). */
		f->word_start = true;
		return i + 1;
	case '\0':
		problem(sc->r, NA_SH_P_NUL, i);
		word(sc);
		return i + 1;
	default:
		word(sc);
		return i + 1;
	}
}

/* One byte in a double-quote, here-document or ${ } frame. */
static size_t step_quoted(struct scanner *sc, size_t i)
{
	const char *s = sc->s;
	struct frame *f = &sc->stack[sc->top];
	char c = s[i];
	size_t j;

	switch (c) {
	case '\\':
		if (i + 1 >= sc->end) {
			problem(sc->r, NA_SH_P_TRAILING_BACKSLASH, i);
			return i + 1;
		}
		if (s[i + 1] == '\0')
			problem(sc->r, NA_SH_P_NUL, i + 1);
		/* Inside "..." a backslash only escapes $ ` " \ newline; the
		 * others stay literal, but none of those can open anything,
		 * so skipping the next byte is exact either way. */
		return i + 2;
	case '"':
		if (f->type == F_DQUOTE) {
			pop(sc);
			return i + 1;
		}
		if (f->type == F_BRACE) {
			push(sc, F_DQUOTE, i);
			return i + 1;
		}
		return i + 1;
	case '\'':
		if (f->type == F_BRACE && sc->top > 0 && sc->stack[sc->top - 1].type != F_DQUOTE) {
			const char *q = memchr(s + i + 1, '\'', sc->end - i - 1);
			if (!q) {
				problem(sc->r, NA_SH_P_UNTERMINATED_SQUOTE, i);
				return sc->end;
			}
			return (size_t)(q - s) + 1;
		}
		return i + 1;
	case '`':
		report(sc->r, NA_SH_BACKTICK, i);
		push(sc, F_BACKTICK, i);
		return i + 1;
	case '$':
		j = dollar(sc, i, false);
		return j ? j : i + 1;
	case '{':
		if (f->type == F_BRACE)
			f->depth++;
		return i + 1;
	case '}':
		if (f->type == F_BRACE) {
			if (f->depth > 0)
				f->depth--;
			else
				pop(sc);
		}
		return i + 1;
	case '\0':
		problem(sc->r, NA_SH_P_NUL, i);
		return i + 1;
	default:
		return i + 1;
	}
}

static void scan_range(const char *s, size_t begin, size_t end, enum frame_type start,
                       unsigned nesting, na_shell_result *r)
{
	/* Frames and here-document state are large; keep them off the stack
	 * of a nested call chain by using one scanner per level (bounded by
	 * MAX_HEREDOC_NESTING). */
	struct scanner sc;
	sc.s = s;
	sc.end = end;
	sc.r = r;
	sc.top = 0;
	sc.n_hd = 0;
	sc.nesting = nesting;
	sc.stack[0].type = start;
	sc.stack[0].depth = 0;
	sc.stack[0].have_word = false;
	sc.stack[0].word_start = true;
	sc.stack[0].pending_nl = NO_POS;

	size_t i = begin;
	while (i < end) {
		if (cmd_like(sc.stack[sc.top].type))
			i = step_cmd(&sc, i);
		else
			i = step_quoted(&sc, i);
	}
	if (sc.n_hd)
		problem(r, NA_SH_P_UNTERMINATED_HEREDOC, end);
	for (unsigned k = sc.top; k > 0; k--) {
		switch (sc.stack[k].type) {
		case F_DQUOTE:
			problem(r, NA_SH_P_UNTERMINATED_DQUOTE, end);
			break;
		case F_BACKTICK:
			problem(r, NA_SH_P_UNTERMINATED_BACKTICK, end);
			break;
		default:
			problem(r, NA_SH_P_UNTERMINATED_SUBST, end);
			break;
		}
	}
}

void na_shell_scan(const char *script, size_t len, na_shell_result *out)
{
	memset(out, 0, sizeof *out);
	for (unsigned k = 0; k < NA_SH_OP_COUNT; k++)
		out->first[k] = NO_POS;
	if (!script)
		return;
	scan_range(script, 0, len, F_TOP, 0, out);
}

static const char *const op_texts[NA_SH_OP_COUNT] = {
    "&&", "||", ";", "|", "&", ">", "<", "$(", "`", "newline",
};

const char *na_shell_op_text(na_shell_op op)
{
	if ((unsigned)op >= NA_SH_OP_COUNT)
		return "?";
	return op_texts[op];
}

int na_shell_op_parse(const char *text, na_shell_op *out)
{
	static const struct {
		const char *text;
		na_shell_op op;
	} aliases[] = {
	    {">>", NA_SH_OUT},     {"<<", NA_SH_IN},       {"|&", NA_SH_PIPE},
	    {"\n", NA_SH_NEWLINE}, {"``", NA_SH_BACKTICK}, {"$()", NA_SH_SUBST},
	};
	if (!text)
		return -EINVAL;
	for (unsigned k = 0; k < NA_SH_OP_COUNT; k++) {
		if (strcmp(text, op_texts[k]) == 0) {
			*out = (na_shell_op)k;
			return 0;
		}
	}
	for (size_t k = 0; k < sizeof aliases / sizeof aliases[0]; k++) {
		if (strcmp(text, aliases[k].text) == 0) {
			*out = aliases[k].op;
			return 0;
		}
	}
	return -EINVAL;
}

const char *na_shell_problem_text(unsigned bit)
{
	switch (bit) {
	case NA_SH_P_UNTERMINATED_SQUOTE:
		return "unterminated single quote";
	case NA_SH_P_UNTERMINATED_DQUOTE:
		return "unterminated double quote";
	case NA_SH_P_UNTERMINATED_SUBST:
		return "unterminated $( or ${";
	case NA_SH_P_UNTERMINATED_BACKTICK:
		return "unterminated backtick";
	case NA_SH_P_UNTERMINATED_HEREDOC:
		return "unterminated here-document";
	case NA_SH_P_NUL:
		return "NUL byte in script";
	case NA_SH_P_TOO_DEEP:
		return "nesting too deep";
	case NA_SH_P_TOO_MANY_HEREDOCS:
		return "too many here-documents";
	case NA_SH_P_TRAILING_BACKSLASH:
		return "trailing backslash";
	default:
		return "unreadable script";
	}
}

bool na_shell_is_shell(const char *name)
{
	static const char *const shells[] = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"};
	if (!name)
		return false;
	for (size_t k = 0; k < sizeof shells / sizeof shells[0]; k++)
		if (strcmp(name, shells[k]) == 0)
			return true;
	return false;
}

const char *na_shell_script_arg(char *const *argv, size_t argc)
{
	bool has_c = false;
	for (size_t i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!a)
			return NULL;
		if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0) {
			return has_c && i + 1 < argc ? argv[i + 1] : NULL;
		}
		if (a[0] == '-' && a[1] == '-') {
			/* bash long options; two take an argument. */
			if (strcmp(a, "--rcfile") == 0 || strcmp(a, "--init-file") == 0)
				i++;
			continue;
		}
		if ((a[0] == '-' || a[0] == '+') && a[1]) {
			bool takes_arg = false;
			for (const char *p = a + 1; *p; p++) {
				if (*p == 'c' && a[0] == '-')
					has_c = true;
				if (*p == 'o' || *p == 'O')
					takes_arg = true;
			}
			if (takes_arg)
				i++;
			continue;
		}
		return has_c ? a : NULL;
	}
	return NULL;
}
