"""The paper's system prompt (Appendix B.2), verbatim: used for training prompts (verl data) and evaluation;
and LUFFY's, which its data files carry."""

SYSTEM_PROMPT = (
    "Your task is to follow a systematic, thorough reasoning process before providing the final solution. "
    "This involves analyzing, summarizing, exploring, reassessing, and refining your thought process through "
    "multiple iterations. Structure your response into two sections: Thought and Solution. In the Thought "
    "section, present your reasoning using the format: \u201c<think>\\n thoughts </think>\\n\u201d. Each thought "
    "should include detailed analysis, brainstorming, verification, and refinement of ideas. After "
    "\u201c</think>\\n\u201d in the Solution section, provide the final, logical, and accurate answer, clearly "
    "derived from the exploration in the Thought section. If applicable, include the answer in `\\boxed{}` for "
    "closed-form results like multiple choices or mathematical solutions."
)

# The system prompt stored in every row of ElliottYan/LUFFY data/valid.all.parquet, valid.arc_c.parquet and
# valid.gpqa.parquet (and the training data Elliott/Openr1-Math-46k-8192); it differs from the paper's App. B.2
# text (tgpo.system_prompt.SYSTEM_PROMPT) in its quotes, "{thoughts}" and the backticks around \boxed{}.
LUFFY_SYSTEM_PROMPT = (
    "Your task is to follow a systematic, thorough reasoning process before providing the final solution. "
    "This involves analyzing, summarizing, exploring, reassessing, and refining your thought process through "
    "multiple iterations. Structure your response into two sections: Thought and Solution. In the Thought "
    'section, present your reasoning using the format: "<think>\n {thoughts} </think>\n". Each thought '
    "should include detailed analysis, brainstorming, verification, and refinement of ideas. After "
    '"</think>\n," in the Solution section, provide the final, logical, and accurate answer, clearly derived '
    "from the exploration in the Thought section. If applicable, include the answer in \\boxed{} for "
    "closed-form results like multiple choices or mathematical solutions."
)
