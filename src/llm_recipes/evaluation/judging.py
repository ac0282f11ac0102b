"""LLM-as-a-judge (MT-bench style): pairwise judging with position swapping, single-answer grading, and the judges
(a local Hugging Face model, or an OpenAI-compatible endpoint the recipe names; never called by default)."""

import json
import os
import re
import urllib.request

PAIRWISE_PROMPT = (
    "[System]\nPlease act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user question displayed below. Avoid any position biases and do not let the length of the "
    "responses or the names of the assistants influence your decision. After your explanation, output your final "
    "verdict strictly in this format: \"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better, and "
    "\"[[C]]\" for a tie.\n\n[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
    "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
    "[The End of Assistant B's Answer]")
SINGLE_PROMPT = (
    "[System]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI assistant "
    "to the user question displayed below. Be as objective as possible. After your explanation, rate the response on "
    "a scale of 1 to 10 strictly in this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\n"
    "{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]")


def parse_pairwise(text):
    found = re.findall(r"\[\[(A|B|C)\]\]", text)
    return {"A": "A", "B": "B", "C": "tie"}[found[-1]] if found else "error"


def parse_rating(text):
    found = re.findall(r"\[\[(\d+(?:\.\d+)?)\]\]", text)
    return float(found[-1]) if found else None


def pairwise(questions, answers_a, answers_b, judge):
    """Judge each pair twice, A/B and then swapped. A verdict that changes with the order counts as a tie.
    `judge(prompt) -> text`. Returns per-question records and the win / loss / tie summary for model A."""
    records, wins, losses, ties, inconsistent = [], 0, 0, 0, 0
    for q in questions:
        question = q["turns"][0]
        a, b = answers_a[q["question_id"]], answers_b[q["question_id"]]
        first = parse_pairwise(judge(PAIRWISE_PROMPT.format(question=question, answer_a=a, answer_b=b)))
        second = parse_pairwise(judge(PAIRWISE_PROMPT.format(question=question, answer_a=b, answer_b=a)))
        second = {"A": "B", "B": "A"}.get(second, second)  # back to model A / model B
        verdict = first if first == second and first != "error" else "tie"
        inconsistent += first != second
        wins, losses, ties = wins + (verdict == "A"), losses + (verdict == "B"), ties + (verdict == "tie")
        records.append({"question_id": q["question_id"], "order_ab": first, "order_ba": second, "verdict": verdict})
    total = max(len(records), 1)
    return records, {"win": wins, "loss": losses, "tie": ties, "inconsistent": inconsistent, "total": len(records),
                     "win_rate": wins / total, "adjusted_win_rate": (wins + 0.5 * ties) / total}


def single(questions, answers, judge):
    records = []
    for q in questions:
        text = judge(SINGLE_PROMPT.format(question=q["turns"][0], answer=answers[q["question_id"]]))
        records.append({"question_id": q["question_id"], "rating": parse_rating(text)})
    rated = [r["rating"] for r in records if r["rating"] is not None]
    return records, {"mean_rating": sum(rated) / len(rated) if rated else None, "rated": len(rated),
                     "total": len(records)}


def generate_answers(model_dir, questions, max_new_tokens=256):
    """Greedy answers to each question's turns through the model's chat template (multi-turn: turn by turn; the
    first turn's answer is judged)."""
    from llm_recipes.generation import generate, load

    model, tokenizer = load(model_dir)
    conversations = {q["question_id"]: [] for q in questions}
    for turn in range(max(len(q["turns"]) for q in questions)):
        asked = [q for q in questions if turn < len(q["turns"])]
        for q in asked:
            conversations[q["question_id"]].append({"role": "user", "content": q["turns"][turn]})
        replies = generate(model, tokenizer, [conversations[q["question_id"]] for q in asked], max_new_tokens)
        for q, reply in zip(asked, replies):
            conversations[q["question_id"]].append({"role": "assistant", "content": reply[0].text})
    return {qid: messages[1]["content"] for qid, messages in conversations.items()}


def local_judge(model_dir, max_new_tokens=512):
    from llm_recipes.generation import generate, load

    model, tokenizer = load(model_dir)

    def judge(prompt):
        return generate(model, tokenizer, [[{"role": "user", "content": prompt}]], max_new_tokens)[0][0].text

    return judge


def api_judge(api_base, model, api_key_env="OPENAI_API_KEY", timeout=120, temperature=0):
    """An OpenAI-compatible /chat/completions endpoint (opt-in: only when a recipe names judge_api_base); prompt ->
    reply text. Also Self-Instruct's generator (with a sampling temperature)."""
    key = os.environ.get(api_key_env, "")

    def judge(prompt):
        body = json.dumps({"model": model, "temperature": temperature,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        request = urllib.request.Request(f"{api_base.rstrip('/')}/chat/completions", data=body, method="POST",
                                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)["choices"][0]["message"]["content"]

    return judge


def make_judge(model_dir=None, api_base=None, api_model=None, api_key_env="OPENAI_API_KEY", max_new_tokens=512,
               key="judge_model_name_or_path"):
    """The judge a recipe names: an OpenAI-compatible endpoint (opt-in) or a local model directory."""
    from llm_recipes.errors import RecipeError
    from llm_recipes.training.common import require_model_dir

    if api_base:
        if not api_model:
            raise RecipeError("judge_api_model: required with judge_api_base")
        return api_judge(api_base, api_model, api_key_env)
    if not model_dir:
        raise RecipeError(f"{key}: name a local judge model (or an endpoint with judge_api_base)")
    return local_judge(require_model_dir(model_dir, key), max_new_tokens)
