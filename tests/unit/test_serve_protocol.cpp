// serve's protocol layer without a model: stop strings over streamed pieces, request validation
// (each refusal's status, param and code), the API key check.
#include <gtest/gtest.h>

#include "serve/api_key.hpp"
#include "serve/request.hpp"
#include "serve/stop_text.hpp"

using namespace medgpt;

namespace {

// Streams `pieces` through a StopText, taking after each, as the HTTP thread does.
std::string streamed(const std::vector<std::string>& stop, const std::vector<std::string>& pieces, bool* stopped = nullptr) {
  serve::StopText t(stop);
  std::string out;
  for (const auto& p : pieces) {
    const bool more = t.push(p);
    out += t.take(false);
    if (!more) break;
  }
  out += t.take(true);
  if (stopped) *stopped = t.stopped();
  EXPECT_EQ(out, t.text());  // what was streamed is the whole answer
  return out;
}

}  // namespace

TEST(StopText, CutsAtAStopStringSplitAcrossPieces) {
  bool stopped = false;
  EXPECT_EQ(streamed({"END"}, {"abc E", "N", "D more"}, &stopped), "abc ");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(streamed({"END"}, {"abc E", "N", "X"}, &stopped), "abc ENX");
  EXPECT_FALSE(stopped);
}

TEST(StopText, HoldsBackOnlyAPossibleStopStart) {
  serve::StopText t({"</s>", "##"});
  t.push("hello <");
  EXPECT_EQ(t.take(false), "hello ");  // "<" may start "</s>"
  t.push("/");
  EXPECT_EQ(t.take(false), "");
  t.push("x #");
  EXPECT_EQ(t.take(false), "</x ");
  EXPECT_EQ(t.take(true), "#");  // generation ended: the rest goes out
}

TEST(StopText, TheEarliestStopStringWinsWhicheverIsListedFirst) {
  EXPECT_EQ(streamed({"world", "lo"}, {"hello world"}), "hel");
  EXPECT_EQ(streamed({"", "x"}, {"abc"}), "abc");  // empty stop strings are ignored
}

TEST(StopText, AStopStringInsideOnePieceAndAtTheVeryStart) {
  EXPECT_EQ(streamed({"\n\n"}, {"line\n\nnext"}), "line");
  EXPECT_EQ(streamed({"Q:"}, {"Q", ":", "a"}), "");
}

class ServeRequest : public ::testing::Test {
 protected:
  ServeRequest()
      : tok_(data::Tokenizer::load(std::string(MEDGPT_SOURCE_DIR) + "/inputs/tokenizer")),
        ctx_{tok_, data::ChatTemplate::get("qwen"), {}, {}, 48} {
    ctx_.render.add_generation_prompt = true;
    ctx_.defaults.max_new_tokens = 20;
    ctx_.defaults.sampling.top_k = 5;
  }
  serve::Request chat(const std::string& extra) const {
    return serve::parse_request(R"({"messages":[{"role":"user","content":"高血压需要做哪些检查？"}])" + extra + "}", true, ctx_);
  }
  // The refusal of a chat body with `extra` fields: "status param code".
  std::string refusal(const std::string& extra, bool chat_schema = true) const {
    try {
      if (chat_schema) chat(extra);
      else serve::parse_request(extra, false, ctx_);
    } catch (const serve::ApiError& e) {
      EXPECT_EQ(e.type, "invalid_request_error");
      EXPECT_FALSE(e.message.empty());
      return std::to_string(e.status) + " " + e.param + " " + e.code;
    }
    return "accepted";
  }
  data::Tokenizer tok_;
  serve::RequestContext ctx_;
};

TEST_F(ServeRequest, AChatBodyBecomesTheRenderedPromptAndItsOptions) {
  const serve::Request r = chat(R"(,"temperature":0.5,"top_p":0.9,"max_tokens":7,"stop":["。","\n"],"stream":true,"seed":3)");
  const std::string rendered = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n高血压需要做哪些检查？<|im_end|>\n<|im_start|>assistant\n";
  const auto ids = tok_.encode(rendered);
  EXPECT_EQ(r.prompt, std::vector<std::int64_t>(ids.begin(), ids.end()));
  EXPECT_TRUE(r.options.sampling.do_sample);
  EXPECT_DOUBLE_EQ(r.options.sampling.temperature, 0.5);
  EXPECT_DOUBLE_EQ(r.options.sampling.top_p, 0.9);
  EXPECT_EQ(r.options.sampling.top_k, 5);  // the server's default
  EXPECT_EQ(r.options.max_new_tokens, 7);
  EXPECT_EQ(r.options.seed, 3u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"。", "\n"}));
  EXPECT_TRUE(r.stream);
}

TEST_F(ServeRequest, MaxTokensDefaultsToWhatTheContextLeaves) {
  const std::int64_t n = static_cast<std::int64_t>(chat("").prompt.size());
  ASSERT_GT(n, 28);  // the default 20 does not fit in 48 - n: the context's remainder is used
  EXPECT_EQ(chat("").options.max_new_tokens, 48 - n);
  EXPECT_EQ(chat(R"(,"max_completion_tokens":3)").options.max_new_tokens, 3);
}

TEST_F(ServeRequest, EachBadFieldIsRefusedWithItsName) {
  EXPECT_EQ(refusal("not json", false), "400  ");
  EXPECT_EQ(refusal("[1]", false), "400  ");
  EXPECT_EQ(refusal(R"({"prompt":""})", false), "400 prompt ");
  EXPECT_EQ(refusal(R"({"prompt":["a","b"]})", false), "400 prompt ");
  EXPECT_EQ(serve::parse_request(R"({"prompt":["高血压"]})", false, ctx_).prompt.size(), tok_.encode("高血压").size());
  EXPECT_EQ(refusal(R"(,"n":2)"), "400 n ");
  EXPECT_EQ(refusal(R"(,"stream":"yes")"), "400 stream ");
  EXPECT_EQ(refusal(R"(,"temperature":2.5)"), "400 temperature ");
  EXPECT_EQ(refusal(R"(,"top_p":0)"), "400 top_p ");
  EXPECT_EQ(refusal(R"(,"top_k":-1)"), "400 top_k ");
  EXPECT_EQ(refusal(R"(,"repetition_penalty":0)"), "400 repetition_penalty ");
  EXPECT_EQ(refusal(R"(,"seed":-1)"), "400 seed ");
  EXPECT_EQ(refusal(R"(,"seed":1e400)"), "400  ");  // past a double: refused, not thrown through
  EXPECT_EQ(refusal(R"(,"max_tokens":0)"), "400 max_tokens ");
  EXPECT_EQ(refusal(R"(,"max_tokens":1000)"), "400 max_tokens context_length_exceeded");
  EXPECT_EQ(refusal(R"(,"max_tokens":18446744073709551615)"), "400 max_tokens ");
  EXPECT_EQ(refusal(R"(,"stop":["a","b","c","d","e"])"), "400 stop ");
  EXPECT_EQ(refusal(R"(,"stop":[1])"), "400 stop ");
  EXPECT_EQ(refusal(R"({"messages":[]})", false), "400 prompt ");
  try {
    serve::parse_request(R"({"messages":[{"role":"user"}]})", true, ctx_);
    ADD_FAILURE() << "accepted a message without content";
  } catch (const serve::ApiError& e) {
    EXPECT_EQ(e.param, "messages[0]");
  }
  try {
    serve::parse_request(R"({"messages":[{"role":"assistant","content":"x"}]})", true, ctx_);
    ADD_FAILURE() << "accepted a conversation that starts with the assistant";
  } catch (const serve::ApiError& e) {
    EXPECT_EQ(e.param, "messages");
  }
  const std::string long_prompt(400, 'x');
  EXPECT_EQ(refusal(R"({"prompt":")" + long_prompt + R"("})", false), "400 messages context_length_exceeded");
}

TEST(ApiKey, AcceptsExactlyTheBearerHeader) {
  const serve::ApiKey key("sekret");
  EXPECT_TRUE(key.required());
  EXPECT_TRUE(key.accepts("Bearer sekret"));
  EXPECT_FALSE(key.accepts("Bearer sekre"));
  EXPECT_FALSE(key.accepts("Bearer sekrett"));
  EXPECT_FALSE(key.accepts("bearer sekret"));
  EXPECT_FALSE(key.accepts(""));
  EXPECT_TRUE(serve::ApiKey("").accepts("anything"));
  EXPECT_FALSE(serve::ApiKey("").required());
}
