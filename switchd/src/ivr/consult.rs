//! The two menus an IVR flow does not spell out node by node because their content is data of
//! its own: consultation (IVR-7), built from the published knowledge-base articles marked for
//! the IVR, and the keypad opinion survey (IVR-8). Both are steps of the same sans-IO
//! [`Interpreter`].

use rexian_shared::{ArticleKind, SurveyScale};

use super::flow::Delivery;
use super::interp::{secs, Ask, Command, Input, Interpreter, Purpose, Say, Then, Wait};

/// Articles offered per menu (keys 1 to 9).
const MENU_MAX: usize = 9;
const NO_ARTICLES: &str = "目前没有可收听的咨询内容。";
const AFTER_ARTICLE: &str = "重听请按1，传真发送请按2，电子邮件发送请按3，返回上一级请按星号键，结束咨询请按井号键。";
const NO_SURVEY: &str = "目前没有进行中的民意调查，感谢您的关注。";
const SURVEY_DONE: &str = "调查结束，感谢您的参与。";

/// Where the consultation menus are.
#[derive(Debug)]
pub(super) enum Consult {
    Loading,
    Kinds,
    Articles(ArticleKind),
    Read(i64),
    After(i64),
    Done,
}

/// Where the survey is.
#[derive(Debug)]
pub(super) enum SurveyStep {
    Loading,
    Question(usize),
    Done,
}

fn keys(n: usize) -> String {
    (1..=n).map(|i| char::from(b'0' + i as u8)).collect()
}

impl Interpreter {
    pub(super) fn start_consultation(&mut self) {
        self.push(Command::LoadArticles);
        self.wait = Wait::Consult(Consult::Loading);
    }

    pub(super) fn consult_input(&mut self, state: Consult, input: Input) {
        match (state, input) {
            (Consult::Loading, Input::Articles(articles)) => {
                self.articles = articles;
                if self.articles.is_empty() {
                    self.play_then(vec![Say::text(NO_ARTICLES)], false, Then::Consult(Consult::Done));
                } else {
                    self.consult_step(Consult::Kinds);
                }
            }
            (state, _) => self.wait = Wait::Consult(state),
        }
    }

    /// The kinds that have articles, in the knowledge base's order.
    fn kinds(&self) -> Vec<ArticleKind> {
        ArticleKind::ALL.iter().copied().filter(|k| self.articles.iter().any(|a| a.kind == *k)).take(MENU_MAX).collect()
    }

    pub(super) fn consult_step(&mut self, state: Consult) {
        match state {
            Consult::Loading => self.start_consultation(),
            Consult::Kinds => {
                let kinds = self.kinds();
                if let [only] = kinds.as_slice() {
                    return self.consult_step(Consult::Articles(*only));
                }
                let mut text: String = kinds.iter().enumerate().map(|(i, k)| format!("{}请按{}，", k.zh(), i + 1)).collect();
                text.push_str("结束咨询请按井号键。");
                self.note("consultation menu");
                let ask = Ask::key(vec![Say::text(text)], &(keys(kinds.len()) + "#"), secs(8), 1, Purpose::ConsultKinds);
                self.ask(ask);
            }
            Consult::Articles(kind) => {
                let titles: Vec<String> = self.articles.iter().filter(|a| a.kind == kind).take(MENU_MAX).map(|a| a.title.clone()).collect();
                let mut text: String = titles.iter().enumerate().map(|(i, t)| format!("{t}，请按{}；", i + 1)).collect();
                text.push_str("返回上一级请按星号键。");
                let ask = Ask::key(vec![Say::text(text)], &(keys(titles.len()) + "*"), secs(8), 1, Purpose::ConsultArticles(kind));
                self.ask(ask);
            }
            Consult::Read(id) => {
                let Some(text) = self.articles.iter().find(|a| a.id == id).map(|a| format!("{}。{}", a.title, a.body)) else {
                    return self.consult_step(Consult::Kinds);
                };
                self.note(format!("article {id}"));
                let say = Say { text: Some(text), file: None, replaced_by: Some(format!("kb-{id}")) };
                self.play_then(vec![say], true, Then::Consult(Consult::After(id)));
            }
            Consult::After(id) => {
                let ask = Ask::key(vec![Say::text(AFTER_ARTICLE)], "123*#", secs(8), 1, Purpose::ConsultAfter(id));
                self.ask(ask);
            }
            Consult::Done => self.node_next(),
        }
    }

    fn article_kind(&self, id: i64) -> Option<ArticleKind> {
        self.articles.iter().find(|a| a.id == id).map(|a| a.kind)
    }

    /// A consultation or survey question was answered (`None`: not validly, after retries).
    pub(super) fn sub_answered(&mut self, purpose: Purpose, answer: Option<String>) {
        let key = answer.as_deref().unwrap_or("");
        match purpose {
            Purpose::ConsultKinds => {
                let kind = key.parse::<usize>().ok().and_then(|i| self.kinds().get(i.wrapping_sub(1)).copied());
                self.consult_step(kind.map_or(Consult::Done, Consult::Articles));
            }
            Purpose::ConsultArticles(kind) => {
                let ids: Vec<i64> = self.articles.iter().filter(|a| a.kind == kind).take(MENU_MAX).map(|a| a.id).collect();
                let chosen = key.parse::<usize>().ok().and_then(|i| ids.get(i.wrapping_sub(1)).copied());
                let back = if self.kinds().len() > 1 { Consult::Kinds } else { Consult::Done };
                self.consult_step(chosen.map_or(back, Consult::Read));
            }
            Purpose::ConsultAfter(id) => self.after_article(id, key),
            Purpose::FaxNumber(id) => match answer {
                Some(number) => {
                    self.push(Command::RequestDelivery { channel: Delivery::Fax, address: number.clone(), article: id });
                    let text = format!("已记录您的传真请求，我们将尽快发送到{number}。");
                    self.play_then(vec![Say::text(text)], false, Then::Consult(Consult::After(id)));
                }
                None => self.consult_step(Consult::After(id)),
            },
            Purpose::SurveyQuestion(i) => {
                if let (Some(survey), Ok(answer)) = (self.survey.as_ref().and_then(|s| s.id), key.parse::<u8>()) {
                    self.push(Command::SaveAnswer { survey, question: i, answer });
                }
                self.survey_step(SurveyStep::Question(i + 1));
            }
            Purpose::Node => {}
        }
    }

    fn after_article(&mut self, id: i64, key: &str) {
        match key {
            "1" => self.consult_step(Consult::Read(id)),
            "2" => {
                let prompt = vec![Say::text("请输入传真号码，以井号键结束。")];
                let invalid = Say::text(super::interp::INVALID_INPUT);
                let ask = Ask { prompt, invalid, min: 5, max: 20, terminator: Some('#'), timeout: secs(10), attempt: 0, retries: 1, keys: None, purpose: Purpose::FaxNumber(id) };
                self.ask(ask);
            }
            "3" => {
                let address = self.var("caller").unwrap_or_default().to_owned();
                self.push(Command::RequestDelivery { channel: Delivery::Email, address, article: id });
                let text = "已记录您的电子邮件请求，工作人员将与您核实邮箱地址后发送。";
                self.play_then(vec![Say::text(text)], false, Then::Consult(Consult::After(id)));
            }
            "*" => {
                let kind = self.article_kind(id);
                self.consult_step(kind.map_or(Consult::Kinds, Consult::Articles));
            }
            _ => self.consult_step(Consult::Done),
        }
    }

    pub(super) fn start_survey(&mut self) {
        self.push(Command::LoadSurvey);
        self.wait = Wait::Survey(SurveyStep::Loading);
    }

    pub(super) fn survey_input(&mut self, state: SurveyStep, input: Input) {
        match (state, input) {
            (SurveyStep::Loading, Input::Survey(None)) => {
                self.play_then(vec![Say::text(NO_SURVEY)], false, Then::Survey(SurveyStep::Done));
            }
            (SurveyStep::Loading, Input::Survey(Some(survey))) => {
                let intro = format!("欢迎参加{}，共{}个问题。", survey.title, survey.questions.len());
                self.note(format!("survey {}", survey.id.unwrap_or_default()));
                self.survey = Some(survey);
                self.play_then(vec![Say::text(intro)], true, Then::Survey(SurveyStep::Question(0)));
            }
            (state, _) => self.wait = Wait::Survey(state),
        }
    }

    pub(super) fn survey_step(&mut self, step: SurveyStep) {
        match step {
            SurveyStep::Loading => self.start_survey(),
            SurveyStep::Question(i) => {
                let Some(q) = self.survey.as_ref().and_then(|s| s.questions.get(i)).cloned() else {
                    return self.play_then(vec![Say::text(SURVEY_DONE)], false, Then::Survey(SurveyStep::Done));
                };
                let (hint, keys) = match q.scale {
                    SurveyScale::OneToFive => ("请按1到5评分，5分为最好。", "12345"),
                    SurveyScale::YesNo => ("是请按1，否请按2。", "12"),
                };
                let text = format!("第{}题，{}{}", i + 1, q.text, hint);
                self.ask(Ask::key(vec![Say::text(text)], keys, secs(8), 1, Purpose::SurveyQuestion(i)));
            }
            SurveyStep::Done => self.node_next(),
        }
    }
}
