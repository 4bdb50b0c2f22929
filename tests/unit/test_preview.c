/* store_preview_text: the RFC 8970 preview of a text part (section 3.3:
 * plain text, UTF-8, at most 256 characters; we cut at 200), on the edge
 * cases of HTML and white space mail has. */
#include "test.h"
#include "store/store_private.h"

#include <stdlib.h>
#include <string.h>

static void check(bool html, const char *in, const char *want)
{
	char *got = store_preview_text(html, in, strlen(in));
	CHECK_STR(got, want);
	free(got);
}

/* Section 3.3: white space runs (and control characters) become one space,
 * none at either end. */
static void test_rfc8970_3_3_white_space(void)
{
	check(false, "", "");
	check(false, " \r\n\t ", "");
	check(false, "  a  b\r\n\r\nc\t\td  ", "a b c d");
	check(false, "a\x01\x7f" "b", "a b");
	/* U+00A0 and the C1 controls count as white space */
	check(false, "a\xc2\xa0\xc2\xa0" "b\xc2\x85" "c", "a b c");
	/* other two-byte characters stay */
	check(false, "caf\xc3\xa9 \xc3\xa0", "caf\xc3\xa9 \xc3\xa0");
}

static void test_rfc8970_3_3_length(void)
{
	char in[1000], want[300];
	memset(in, 'x', 500);
	in[500] = '\0';
	memset(want, 'x', STORE_PREVIEW_CHARS);
	want[STORE_PREVIEW_CHARS] = '\0';
	check(false, in, want);
	/* characters, not octets: 300 three-octet characters give 200 */
	char *wide = malloc(901), *wwant = malloc(601);
	for (int i = 0; i < 300; i++)
		memcpy(wide + 3 * i, "\xe2\x98\xba", 3);
	wide[900] = '\0';
	memcpy(wwant, wide, 600);
	wwant[600] = '\0';
	check(false, wide, wwant);
	free(wide);
	free(wwant);
	/* a space that would be the 201st character is not added */
	memset(in, 'y', 200);
	strcpy(in + 200, "   z");
	memset(want, 'y', 200);
	want[200] = '\0';
	check(false, in, want);
	/* nor one that would be the 200th, the last */
	strcpy(in + 199, "   z");
	want[199] = '\0';
	check(false, in, want);
}

/* Section 3.3: the preview is UTF-8 even when the conversion let
 * malformed bytes through: each becomes U+FFFD. */
static void test_rfc8970_3_3_utf8(void)
{
#define FFFD "\xef\xbf\xbd"
	check(false, "ab\xf0\x9f\x98", "ab" FFFD FFFD FFFD);
	check(false, "\xf8\xa2\xb3\xa2\xa2x", FFFD FFFD FFFD FFFD FFFD "x");
	check(false, "\xed\xa0\x80", FFFD FFFD FFFD);		/* a surrogate */
	check(false, "\xc0\xaf", FFFD FFFD);			/* overlong "/" */
	check(false, "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);	/* above U+10FFFF */
	check(false, "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
#undef FFFD
}

static void test_rfc8970_3_3_html(void)
{
	check(true, "<p>Hello</p><p>world</p>", "Hello world");
	check(true, "<html><head><title>T</title><style>p{color:red}</style></head>"
	      "<body><script type=\"x\">var a = '<p>';</script>Text</body></html>", "Text");
	check(true, "a<!-- <p>hidden</p> -->b", "ab");
	check(true, "Tom &amp; Jerry &lt;3 &quot;x&quot; &nbsp;!", "Tom & Jerry <3 \"x\" !");
	check(true, "&#233;&#xE9;&#X263a; &#0; &#xD800; &#1114112;",
	      "\xc3\xa9\xc3\xa9\xe2\x98\xba \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd");
	check(true, "&unknown; & &# &#x;", "&unknown; & &# &#x;");
	/* unterminated constructs end the text */
	check(true, "before<!-- never closed", "before");
	check(true, "before<style>never closed", "before");
	check(true, "before<b", "before");
	/* "<styles>" is not "<style>" */
	check(true, "<styles>kept</styles>", "kept");
	check(true, "<STYLE>a{}</STYLE>shown", "shown");
}

int main(void)
{
	RUN(test_rfc8970_3_3_white_space);
	RUN(test_rfc8970_3_3_length);
	RUN(test_rfc8970_3_3_utf8);
	RUN(test_rfc8970_3_3_html);
	return test_done();
}
